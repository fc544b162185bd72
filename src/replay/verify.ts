import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { assertObjectArgument } from '../errors/usage-error';
import { EventReader, eventBatchSizeOf, ignoringRejection } from './event-reader';
import { aggregateIdPages, rawIdsOf } from './history';
import { replayAll } from './replay-events';

/** Options of `es.verify`. */
export interface VerifyOptions {
  /** Verify this aggregate only. */
  id?: unknown;
  /**
   * Aggregates read per query.
   * @defaultValue 500
   */
  batchSize?: number;
  /**
   * Events read per query, and held in memory at once: an aggregate with more events is read
   * and replayed a batch at a time.
   * @defaultValue 5000
   */
  eventBatchSize?: number;
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

function compare(definition: AggregateDefinition, id: unknown, row: ObjectLiteral, replayed: ObjectLiteral): VerifyMismatch[] {
  const mismatches: VerifyMismatch[] = [];
  for (const column of [...definition.sourcedColumns, definition.versionColumn]) {
    const stored = column.getEntityValue(row);
    const expected = column.getEntityValue(replayed);
    if (!definition.sameColumnValue(column, stored, expected)) mismatches.push({ reason: 'drift', id, column: column.propertyName, stored, replayed: expected });
  }
  return mismatches;
}

/**
 * Verifies the rows of some ids (as the database returns them) in one REPEATABLE READ
 * transaction, so that rows and events, read in several queries, are of one moment: a write
 * committed in between would otherwise show as drift. Each aggregate is compared as soon as its
 * last event is applied; only its mismatches are kept.
 */
async function verifyIds(manager: EntityManager, definition: AggregateDefinition, ids: readonly unknown[], eventBatchSize: number): Promise<VerifyMismatch[]> {
  return manager.transaction('REPEATABLE READ', async (transaction) => {
    const rows = (await transaction
      .createQueryBuilder(definition.target, 'aggregate')
      .whereInIds(ids as unknown[])
      .orderBy(`aggregate.${definition.primaryColumn.propertyPath}`, 'ASC')
      .getMany()) as ObjectLiteral[];
    const byKey = new Map(rows.map((row) => [String(definition.idOf(row)), row]));
    const found = new Map<string, VerifyMismatch[]>();
    await replayAll(transaction, definition, EventReader.of(definition).eventsOf(transaction, ids, eventBatchSize), {
      idOf: (key, first) => (byKey.has(key) ? definition.idOf(byKey.get(key)!) : first.aggregateId),
      done: ({ key, id, aggregate }) => {
        const row = byKey.get(key);
        if (row) found.set(key, compare(definition, id, row, aggregate));
      },
    });
    // In primary-key order, as rows are read.
    const mismatches: VerifyMismatch[] = [];
    for (const row of rows) {
      const rowMismatches = found.get(String(definition.idOf(row)));
      if (rowMismatches) mismatches.push(...rowMismatches);
      else mismatches.push({ reason: 'noEvents', id: definition.idOf(row), column: definition.versionColumn.propertyName, stored: definition.versionOf(row), replayed: 0 });
    }
    return mismatches;
  });
}

/**
 * The rows whose sourced columns (or version) differ from the replay of their events, read in
 * primary-key order a batch at a time. An empty array means every row matches its history.
 */
export async function verify(manager: EntityManager, definition: AggregateDefinition, options: VerifyOptions = {}): Promise<VerifyMismatch[]> {
  const subject = `verify(${definition.name})`;
  assertObjectArgument(subject, 'options', options);
  const eventBatchSize = eventBatchSizeOf(subject, options.eventBatchSize);
  // A present but undefined id is a mistake, not a request to verify every row.
  if ('id' in options) {
    assertAggregateId(definition, subject, options.id);
    return verifyIds(manager, definition, await rawIdsOf(manager, definition, options.id), eventBatchSize);
  }
  const total = await manager.count(definition.target);
  const mismatches: VerifyMismatch[] = [];
  let processed = 0;
  // Two batches at a time, on two connections: PostgreSQL builds one batch's rows while this
  // process replays the other's. Results and progress still come in primary-key order.
  const inFlight: { ids: unknown[]; verified: Promise<VerifyMismatch[]> }[] = [];
  const settleFirst = async () => {
    const batch = inFlight.shift()!;
    mismatches.push(...(await batch.verified));
    processed += batch.ids.length;
    options.onProgress?.({ processed, total });
  };
  try {
    for await (const ids of aggregateIdPages(manager, definition, options.batchSize ?? 500)) {
      inFlight.push({ ids, verified: ignoringRejection(verifyIds(manager, definition, ids, eventBatchSize)) });
      if (inFlight.length === 2) await settleFirst();
    }
    while (inFlight.length > 0) await settleFirst();
  } finally {
    // After a failure the other batch may still run: nothing outlives the call.
    await Promise.allSettled(inFlight.map((batch) => batch.verified));
  }
  return mismatches;
}
