import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The lines between `// #region name` and `// #endregion name` of a file, dedented. */
export function region(file: string, name: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((line) => line.trim() === `// #region ${name}`);
  const end = lines.findIndex((line, index) => index > start && line.trim() === `// #endregion ${name}`);
  if (start < 0 || end < 0) throw new Error(`${file} has no region '${name}'`);
  const body = lines.slice(start + 1, end);
  const indent = Math.min(...body.filter((line) => line.trim()).map((line) => line.length - line.trimStart().length));
  return body.map((line) => line.slice(indent)).join('\n');
}

export interface CodeBlock {
  doc: string;
  language: string;
  code: string;
  /** `examples/x.ts#name` from an `<!-- include: ... -->` comment right above the block. */
  include?: string;
}

/** The fenced code blocks of a Markdown file, with the include marker each one carries. */
export function codeBlocks(doc: string): CodeBlock[] {
  const text = readFileSync(doc, 'utf8');
  const blocks: CodeBlock[] = [];
  const pattern = /(?:<!-- include: (\S+) -->\n)?```(\w*)\n([\s\S]*?)\n```/g;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    blocks.push({ doc: path.basename(doc), include: match[1], language: match[2], code: match[3] });
  }
  return blocks;
}
