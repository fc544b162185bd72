import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { AggregateNotFoundError } from '../errors/aggregate-not-found-error';
import { writeColumns } from '../events/write-path';
import { ALLOW_DIRECT_WRITE_SETTING } from '../schema/direct-write-guard';
import { aggregateIdPages, loadHistories } from './history';
import { assertReplayable, replayEvents } from './replay-events';

/** Options of `es.rebuildAll`. */
export interface RebuildAllOptions {
  /**
   * Aggregates per transaction: each batch is locked, replayed and written in one short transaction.
   * @defaultValue 500
   */
  batchSize?: number;
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
 * Replays the events of some aggregates into their rows, under row locks, in the caller's
 * transaction. Rows without events are left as they are (a CRUD row not yet baselined); a history
 * that does not begin with a creating event raises `MissingBaselineError` before anything is
 * written.
 * Returns how many rows changed.
 */
async function rebuildIds(
  manager: EntityManager,
  definition: AggregateDefinition,
  ids: readonly unknown[],
): Promise<{ rebuilt: number; aggregates: Map<string, ObjectLiteral> }> {
  const locked = (await manager
    .createQueryBuilder(definition.target, 'aggregate')
    .setLock('pessimistic_write')
    .whereInIds(ids as unknown[])
    .getMany()) as ObjectLiteral[];
  const histories = await loadHistories(manager, definition, ids);
  const aggregates = new Map<string, ObjectLiteral>();
  let rebuilt = 0;
  for (const row of locked) {
    const id = definition.idOf(row);
    const events = histories.get(String(id)) ?? [];
    aggregates.set(String(id), row);
    if (events.length === 0) continue;
    assertReplayable(definition, id, events);
    const replayed = await replayEvents(manager, definition, id, events);
    const before = definition.snapshot(row);
    const changed = definition.changedColumns(before, replayed);
    if (changed.length === 0 && definition.versionOf(row) === definition.versionOf(replayed)) continue;
    for (const column of changed) column.setEntityValue(row, column.getEntityValue(replayed));
    definition.setVersion(row, definition.versionOf(replayed));
    // Through the directWrites: 'reject' trigger: a rebuilt version may jump.
    if (definition.directWrites === 'reject') await manager.query(`SET LOCAL ${ALLOW_DIRECT_WRITE_SETTING} = on`);
    await writeColumns(manager, definition, row, changed);
    rebuilt += 1;
  }
  return { rebuilt, aggregates };
}

/** Rebuilds one aggregate and returns its row as now stored. */
export async function rebuildOne(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<ObjectLiteral> {
  assertAggregateId(definition, `rebuild(${definition.name})`, id);
  return manager.transaction(async (transaction) => {
    const { aggregates } = await rebuildIds(transaction, definition, [id]);
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
  const progress: RebuildProgress = { processed: 0, total: await manager.count(definition.target), rebuilt: 0 };
  for await (const ids of aggregateIdPages(manager, definition, batchSize)) {
    const { rebuilt } = await manager.transaction((transaction) => rebuildIds(transaction, definition, ids));
    progress.processed += ids.length;
    progress.rebuilt += rebuilt;
    options.onProgress?.({ ...progress });
  }
  return progress;
}
