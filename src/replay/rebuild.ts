import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { AggregateNotFoundError } from '../errors/aggregate-not-found-error';
import { writeColumns } from '../events/write-path';
import { rememberStoredState } from '../aggregates/stored-state';
import { ALLOW_DIRECT_WRITE_SETTING } from '../schema/direct-write-guard';
import { DEFAULT_EVENT_BATCH_SIZE, EventReader, eventBatchSizeOf } from './event-reader';
import { aggregateIdPages, rawIdsOf } from './history';
import { replayAll } from './replay-events';

/** Options of `es.rebuildAll`. */
export interface RebuildAllOptions {
  /**
   * Aggregates per transaction: each batch is locked, replayed and written in one short transaction.
   * @defaultValue 500
   */
  batchSize?: number;
  /**
   * Events read per query, and held in memory at once: an aggregate with more events is read
   * and replayed a batch at a time.
   * @defaultValue 5000
   */
  eventBatchSize?: number;
  /** Called after every batch. */
  onProgress?: (progress: RebuildProgress) => void;
}

/** How far `rebuildAll` has come. */
export interface RebuildProgress {
  /** Aggregates processed so far. */
  processed: number;
  /** Aggregates in the table when the run started. */
  total: number;
  /** Aggregates whose row changed so far. */
  rebuilt: number;
}

/**
 * Replays the events of some aggregates (ids as the database returns them) into their rows,
 * under row locks, in the caller's transaction, each row written as soon as its last event is
 * applied. Rows without events are left as they are (a CRUD row not yet baselined); a history
 * that does not begin with a creating event raises `MissingBaselineError`, and the transaction's
 * rollback undoes what the batch wrote.
 * Returns how many rows changed.
 */
async function rebuildIds(
  manager: EntityManager,
  definition: AggregateDefinition,
  ids: readonly unknown[],
  eventBatchSize: number,
): Promise<{ rebuilt: number; aggregates: Map<string, ObjectLiteral> }> {
  const locked = (await manager
    .createQueryBuilder(definition.target, 'aggregate')
    .setLock('pessimistic_write')
    .whereInIds(ids as unknown[])
    .getMany()) as ObjectLiteral[];
  const aggregates = new Map(locked.map((row) => [String(definition.idOf(row)), row]));
  let rebuilt = 0;
  let allowed = false;
  await replayAll(manager, definition, EventReader.of(definition).eventsOf(manager, ids, eventBatchSize), {
    idOf: (key, first) => (aggregates.has(key) ? definition.idOf(aggregates.get(key)!) : first.aggregateId),
    requireCreating: true,
    done: async ({ key, aggregate: replayed }) => {
      const row = aggregates.get(key);
      if (!row) return;
      const before = definition.snapshot(row);
      const changed = definition.changedColumns(before, replayed);
      if (changed.length === 0 && definition.versionOf(row) === definition.versionOf(replayed)) return;
      for (const column of changed) column.setEntityValue(row, column.getEntityValue(replayed));
      definition.setVersion(row, definition.versionOf(replayed));
      // Through the directWrites: 'reject' trigger: a rebuilt version may jump.
      if (definition.directWrites === 'reject' && !allowed) {
        await manager.query(`SET LOCAL ${ALLOW_DIRECT_WRITE_SETTING} = on`);
        allowed = true;
      }
      await writeColumns(manager, definition, row, changed);
      // The row as now stored: what the fast path starts the next event of this instance from
      // (rebuild returns it), not the drifted values it was loaded with.
      rememberStoredState(definition, row);
      rebuilt += 1;
    },
  });
  return { rebuilt, aggregates };
}

/** Rebuilds one aggregate and returns its row as now stored. */
export async function rebuildOne(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<ObjectLiteral> {
  assertAggregateId(definition, `rebuild(${definition.name})`, id);
  return manager.transaction(async (transaction) => {
    const { aggregates } = await rebuildIds(transaction, definition, await rawIdsOf(transaction, definition, id), DEFAULT_EVENT_BATCH_SIZE);
    const row = aggregates.get(String(id));
    if (!row) throw new AggregateNotFoundError(definition.name, id);
    return row;
  });
}

/** Rebuilds every aggregate of a type, a batch per transaction. */
export async function rebuildAll(
  manager: EntityManager,
  definition: AggregateDefinition,
  options: RebuildAllOptions = {},
): Promise<RebuildProgress> {
  const batchSize = options.batchSize ?? 500;
  const eventBatchSize = eventBatchSizeOf(`rebuildAll(${definition.name})`, options.eventBatchSize);
  const progress: RebuildProgress = { processed: 0, total: await manager.count(definition.target), rebuilt: 0 };
  for await (const ids of aggregateIdPages(manager, definition, batchSize)) {
    const { rebuilt } = await manager.transaction((transaction) => rebuildIds(transaction, definition, ids, eventBatchSize));
    progress.processed += ids.length;
    progress.rebuilt += rebuilt;
    options.onProgress?.({ ...progress });
  }
  return progress;
}
