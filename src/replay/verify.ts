import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { assertObjectArgument } from '../errors/usage-error';
import { aggregateIdPages, assertExists, loadHistories } from './history';
import { replayEvents } from './replay-events';

/** Options of `es.verify`. */
export interface VerifyOptions {
  /** Verify this aggregate only. */
  id?: unknown;
  /**
   * Aggregates read per query.
   * @defaultValue 500
   */
  batchSize?: number;
  /** Called after every batch with the number of aggregates checked so far. */
  onProgress?: (progress: { processed: number; total: number }) => void;
}

/**
 * One column of one row that differs from the replay of its events (`drift`), or one row that has
 * no events to replay (`noEvents`: a row from before the model was sourced, waiting for its
 * baseline; `column` is then the version property).
 */
export interface VerifyMismatch {
  /** Why the row is listed. */
  reason: 'drift' | 'noEvents';
  /** The aggregate's primary key. */
  id: unknown;
  /** The property name of the column (the version property for a version mismatch). */
  column: string;
  /** The value in the row. */
  stored: unknown;
  /** The value the events produce. */
  replayed: unknown;
}

async function verifyIds(manager: EntityManager, definition: AggregateDefinition, ids: readonly unknown[]): Promise<VerifyMismatch[]> {
  const rows = (await manager
    .createQueryBuilder(definition.target, 'aggregate')
    .whereInIds(ids as unknown[])
    .orderBy(`aggregate.${definition.primaryColumn.propertyPath}`, 'ASC')
    .getMany()) as ObjectLiteral[];
  const histories = await loadHistories(manager, definition, ids);
  const mismatches: VerifyMismatch[] = [];
  for (const row of rows) {
    const id = definition.idOf(row);
    const events = histories.get(String(id)) ?? [];
    if (events.length === 0) {
      mismatches.push({ reason: 'noEvents', id, column: definition.versionColumn.propertyName, stored: definition.versionOf(row), replayed: 0 });
      continue;
    }
    const replayed = await replayEvents(manager, definition, id, events);
    for (const column of [...definition.sourcedColumns, definition.versionColumn]) {
      const stored = column.getEntityValue(row);
      const expected = column.getEntityValue(replayed);
      if (!definition.sameColumnValue(column, stored, expected)) mismatches.push({ reason: 'drift', id, column: column.propertyName, stored, replayed: expected });
    }
  }
  return mismatches;
}

/**
 * The rows whose sourced columns (or version) differ from the replay of their events, read in
 * primary-key order a batch at a time. An empty array means every row matches its history.
 */
export async function verify(manager: EntityManager, definition: AggregateDefinition, options: VerifyOptions = {}): Promise<VerifyMismatch[]> {
  assertObjectArgument(`verify(${definition.name})`, 'options', options);
  // A present but undefined id is a mistake, not a request to verify every row.
  if ('id' in options) {
    assertAggregateId(definition, `verify(${definition.name})`, options.id);
    await assertExists(manager, definition, options.id);
    return verifyIds(manager, definition, [options.id]);
  }
  const total = await manager.count(definition.target);
  const mismatches: VerifyMismatch[] = [];
  let processed = 0;
  for await (const ids of aggregateIdPages(manager, definition, options.batchSize ?? 500)) {
    mismatches.push(...(await verifyIds(manager, definition, ids)));
    processed += ids.length;
    options.onProgress?.({ processed, total });
  }
  return mismatches;
}
