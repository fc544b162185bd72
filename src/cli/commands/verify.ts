import type { AggregateClass } from '../../event-sourcing';
import type { VerifyMismatch } from '../../replay/verify';
import { findAggregate, parseId, type CliAggregate } from '../aggregates';
import type { CommandRun } from '../command-run';
import { cell, table } from '../output';

/** Options of `verify`. */
export interface VerifyCommandOptions {
  id?: string;
  fix?: boolean;
}

/**
 * A mismatch as printed: `reason` is `'drift'` or `'noEvents'` (a row waiting for its baseline);
 * a copy of the library from before reasons existed leaves it out.
 */
interface MismatchJson {
  id: unknown;
  column: string;
  stored: unknown;
  replayed: unknown;
  reason?: string;
}

function mismatchJson(mismatch: VerifyMismatch): MismatchJson {
  return { id: mismatch.id, column: mismatch.column, stored: mismatch.stored, replayed: mismatch.replayed, ...(mismatch.reason ? { reason: mismatch.reason } : {}) };
}

/** Distinct ids in first-seen order; ids of one row may differ in type (bigint), so keyed by text. */
function distinctIds(mismatches: readonly MismatchJson[]): unknown[] {
  const ids = new Map<string, unknown>();
  for (const mismatch of mismatches) if (!ids.has(String(mismatch.id))) ids.set(String(mismatch.id), mismatch.id);
  return [...ids.values()];
}

/**
 * `verify <Aggregate> [--id <id>] [--fix]`: the rows whose columns differ from the replay of their
 * events. Exit code 1 while any remains. `--fix` rebuilds the rows found, then verifies those
 * rows again (rows without events need `baseline`, which rebuild does not do).
 */
export async function verify(run: CommandRun, aggregateName: string, options: VerifyCommandOptions): Promise<number> {
  const aggregate = findAggregate(run.es.dataSource, aggregateName);
  const target = aggregate.target as AggregateClass<object>;
  let checked: number;
  let found: MismatchJson[];
  if (options.id !== undefined) {
    found = (await run.es.verify(target, { id: parseId(aggregate, options.id) })).map(mismatchJson);
    checked = 1;
  } else {
    const progress = run.progress(`verify ${aggregate.name}`);
    checked = 0;
    try {
      found = (
        await run.es.verify(target, {
          onProgress: ({ processed, total }) => {
            checked = processed;
            progress.update(processed, total);
          },
        })
      ).map(mismatchJson);
    } finally {
      progress.done();
    }
  }
  if (!options.fix) {
    report(run, aggregate, checked, found);
    hintBaseline(run, aggregate, found);
    return found.length > 0 ? 1 : 0;
  }
  // Rebuild replays events: rows without any are left for baseline.
  const drifted = distinctIds(found.filter((mismatch) => mismatch.reason !== 'noEvents'));
  const progress = drifted.length > 1 ? run.progress(`rebuild ${aggregate.name}`) : undefined;
  try {
    for (const [index, id] of drifted.entries()) {
      await run.es.rebuild(target, id);
      progress?.update(index + 1, drifted.length);
    }
  } finally {
    progress?.done();
  }
  // Only the rows found differ: every other row matched its events a moment ago, and writes
  // since then went through the write path.
  const remaining: MismatchJson[] = [];
  for (const id of distinctIds(found)) remaining.push(...(await run.es.verify(target, { id })).map(mismatchJson));
  if (run.json) {
    run.printJson({ aggregate: aggregate.name, checked, mismatches: found, rebuilt: drifted.length, remaining });
  } else {
    report(run, aggregate, checked, found);
    if (drifted.length > 0) run.print(`rebuilt ${drifted.length} row${drifted.length === 1 ? '' : 's'} from their events`);
    if (found.length > 0 && remaining.length === 0) run.print(`${aggregate.name}: the rebuilt rows match their events now`);
    else if (remaining.length > 0) {
      run.print(`${aggregate.name}: ${remaining.length} mismatch${remaining.length === 1 ? '' : 'es'} remain${remaining.length === 1 ? 's' : ''}`);
      run.print(mismatchTable(remaining));
    }
  }
  hintBaseline(run, aggregate, remaining);
  return remaining.length > 0 ? 1 : 0;
}

function report(run: CommandRun, aggregate: CliAggregate, checked: number, mismatches: readonly MismatchJson[]): void {
  if (run.json) {
    run.printJson({ aggregate: aggregate.name, checked, mismatches });
    return;
  }
  const rows = distinctIds(mismatches).length;
  const of = `${checked} row${checked === 1 ? '' : 's'}`;
  if (mismatches.length === 0) {
    run.print(`${aggregate.name}: ${of} checked, every one matches its events`);
    return;
  }
  run.print(`${aggregate.name}: ${mismatches.length} mismatch${mismatches.length === 1 ? '' : 'es'} in ${rows} of ${of}`);
  run.print(mismatchTable(mismatches));
}

/** Table lines shown at most; a terminal is no place for a million; --json lists every one. */
const MAX_TABLE_LINES = 50;

/**
 * Drift as a table, capped; rows without events in one line: a table moved to events may have
 * millions of them, all alike.
 */
function mismatchTable(mismatches: readonly MismatchJson[]): string {
  const drift = mismatches.filter((mismatch) => mismatch.reason !== 'noEvents');
  const waiting = distinctIds(mismatches.filter((mismatch) => mismatch.reason === 'noEvents'));
  const lines: string[] = [];
  if (drift.length > 0) {
    lines.push(
      table(
        ['id', 'column', 'stored', 'replayed', 'reason'],
        drift.slice(0, MAX_TABLE_LINES).map((mismatch) => [cell(mismatch.id), mismatch.column, cell(mismatch.stored), cell(mismatch.replayed), mismatch.reason ?? '']),
      ),
    );
    if (drift.length > MAX_TABLE_LINES) lines.push(`... and ${drift.length - MAX_TABLE_LINES} more: --json lists every one`);
  }
  if (waiting.length > 0) {
    const shown = waiting.slice(0, 5).map(cell).join(', ');
    const more = waiting.length > 5 ? ` and ${waiting.length - 5} more` : '';
    lines.push(`${waiting.length} row${waiting.length === 1 ? ' has' : 's have'} no events yet (noEvents): ${shown}${more}`);
  }
  return lines.join('\n');
}

/** Rows without events are not drift that rebuild repairs: they wait for their baseline. */
function hintBaseline(run: CommandRun, aggregate: CliAggregate, mismatches: readonly MismatchJson[]): void {
  const waiting = mismatches.filter((mismatch) => mismatch.reason === 'noEvents').length;
  if (waiting > 0) run.status(`${waiting} row${waiting === 1 ? ' has' : 's have'} no events yet: typeorm-es baseline ${aggregate.name} writes their first event`);
}
