/** Types of figures-reporter.js for the TypeScript that uses its pure parts. */
export interface FigureTotal {
  name: string;
  unit: string;
  value: number;
}
export declare const FIGURES_FILE: string;
export declare const RESERVED: RegExp;
export declare function summarizeFigures(lines: Iterable<string>): FigureTotal[];
export declare function formatFigures(totals: FigureTotal[]): string;
