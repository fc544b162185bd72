export interface CodeBlock {
  doc: string;
  language: string;
  code: string;
  /** `examples/x.ts#name` from an `<!-- include: ... -->` comment right above the block. */
  include?: string;
}
export function region(file: string, name: string): string;
export function codeBlocks(doc: string): CodeBlock[];
export function docFiles(): string[];
export const root: string;
