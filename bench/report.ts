import type { CaseResult } from './harness';

/** Everything about the run besides the cases, so that two JSON files can be told apart. */
export interface RunInfo {
  date: string;
  quick: boolean;
  /** Set when `--only` ran some groups alone. */
  only?: string[];
  /** Groups that threw: their cases are missing. */
  failed?: string[];
  seconds: number;
  node: string;
  postgres: string;
  redis: string;
  cpus: number;
  /** os.loadavg() when the run started: the load of the rest of the machine. */
  loadavg: number[];
}

export interface CaseEntry {
  name: string;
  baseline: string;
  metric: CaseResult['metric'];
  /** null where there is no baseline to divide by (latency). */
  ratio: number | null;
  min: number | null;
  max: number | null;
  opsPerSecond: number;
  baselineOpsPerSecond: number;
  notes?: string;
  [extra: string]: unknown;
}

const round = (value: number, digits: number) => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : null);

function entryOf(result: CaseResult): CaseEntry {
  return {
    name: result.name,
    baseline: result.baseline,
    metric: result.metric,
    ratio: round(result.median, 3),
    min: round(result.min, 3),
    max: round(result.max, 3),
    opsPerSecond: round(result.rate, 1) ?? 0,
    baselineOpsPerSecond: round(result.baselineRate, 1) ?? 0,
    ...result.extra,
    ...(result.notes ? { notes: result.notes } : {}),
  };
}

/** The JSON file: cases by their stable key, results without one in `others`. */
export function jsonReport(results: readonly CaseResult[], info: RunInfo) {
  const cases: Record<string, CaseEntry> = {};
  const others: (CaseEntry & { group: string })[] = [];
  for (const result of results) {
    if (!result.key) {
      others.push({ group: result.group, ...entryOf(result) });
      continue;
    }
    if (cases[result.key]) throw new Error(`two bench results have the key ${result.key}`);
    cases[result.key] = entryOf(result);
  }
  return { ...info, cases, others };
}

function ratioText(result: CaseResult, value: number): string {
  if (!Number.isFinite(value)) return '-';
  return result.metric === 'throughput' ? `x${value.toFixed(2)}/s` : `x${value.toFixed(2)}`;
}

/** The readable table: one row per case, its ratio to the baseline named on the same row. */
export function printTable(results: readonly CaseResult[]): void {
  const header = ['key', 'case', 'baseline', 'ratio', 'min', 'max', 'ops/s', 'baseline/s'];
  const rows = results.map((r) => [
    r.key ?? `(${r.group})`,
    r.name,
    r.baseline,
    ratioText(r, r.median),
    ratioText(r, r.min),
    ratioText(r, r.max),
    r.rate.toFixed(0),
    r.baselineRate > 0 ? r.baselineRate.toFixed(0) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
  const notes = results.filter((r) => r.notes);
  if (notes.length) console.log('');
  for (const r of notes) console.log(`${r.key ?? r.group}: ${r.notes}`);
}
