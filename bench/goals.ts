import type { CaseEntry } from './report';

/**
 * The targets of issues 11 and 13, for the docs and for whoever reads a run. Informational only: a missed
 * target is printed, never turned into a failing exit code, because the figures move with the
 * machine and a bench that fails on a noisy neighbour teaches people to ignore it.
 */
interface Goal {
  key: string;
  /** A field of cases[key]: 'ratio' or one of the case's extra figures. */
  field: string;
  op: '<=' | '>=' | '<';
  value: number;
}

export const GOALS: readonly Goal[] = [
  { key: 'update.append', field: 'ratio', op: '<=', value: 0.5 },
  { key: 'update.command', field: 'ratio', op: '<=', value: 0.5 },
  { key: 'update.appendAsync', field: 'ratio', op: '<=', value: 0.6 },
  { key: 'create.event', field: 'ratio', op: '<=', value: 0.6 },
  { key: 'update.save', field: 'ratio', op: '<=', value: 1.05 },
  { key: 'replay.verify', field: 'ratio', op: '>=', value: 0.7 },
  { key: 'memory.rebuildAll', field: 'peakRssMb', op: '<', value: 250 },
  { key: 'reactors.latency', field: 'p99Ms', op: '<', value: 25 },
  { key: 'reactors.throughput', field: 'ratio', op: '>=', value: 0.5 },
  { key: 'concurrency.scaling', field: 'ratio', op: '>=', value: 1.6 },
  { key: 'browser.aggregatePage', field: 'pageMs', op: '<', value: 200 },
];

const met = (goal: Goal, measured: number) => (goal.op === '<=' ? measured <= goal.value : goal.op === '>=' ? measured >= goal.value : measured < goal.value);

export function printGoals(cases: Readonly<Record<string, CaseEntry>>): void {
  const rows = GOALS.map((goal) => {
    const measured = cases[goal.key]?.[goal.field];
    const verdict = typeof measured !== 'number' ? 'not measured' : met(goal, measured) ? 'met' : 'MISSED';
    return [`${goal.key}.${goal.field}`, `${goal.op} ${goal.value}`, typeof measured === 'number' ? String(measured) : '-', verdict];
  });
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((row) => row[i].length)));
  console.log('\ntargets (issues 11 and 13; informational, a miss does not fail the run)');
  for (const row of rows) console.log(row.map((cell, i) => (i === 2 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  '));
}
