import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import type { Reactions } from '../reactors/reactions';
import { aggregateIdPages } from '../replay/history';
import { assertExactInDatabase, insertBaselines, missingBaseline, prepareBaseline, type PreparedBaseline } from './write-baseline';

/** Options of `es.baseline`. */
export interface BaselineOptions {
  /**
   * Rows per transaction: each batch is locked, baselined and committed on its own, so no
   * transaction is held across batches and a writer waits for one batch at most.
   * @defaultValue 500
   */
  batchSize?: number;
  /** Called after every batch. */
  onProgress?: (progress: BaselineProgress) => void;
  /**
   * Run the dispatcher's reactors for the baseline events, as for any event (trigger reactors in
   * the batch's transaction; async reactors through the outbox, handed over by the relay).
   * @defaultValue false
   */
  dispatch?: boolean;
}

/** What `es.baseline` did. */
export interface BaselineResult {
  /** Rows without events it looked at. */
  processed: number;
  /** Baseline events it wrote (rows adopted meanwhile by a writer are not counted). */
  baselined: number;
}

/** How far `es.baseline` has come. */
export interface BaselineProgress {
  /** Rows without events looked at so far. */
  processed: number;
  /** Rows without events when the run started. */
  total: number;
  /** Baseline events written so far. */
  baselined: number;
}

/**
 * Writes the baseline of every row that has no events yet (version 0), in primary-key order, a
 * batch per transaction. Stopping at any point loses nothing: a second run starts again and
 * finds only the rows still without events, so it is resumable and writes nothing when done.
 */
export async function baselineAll(
  manager: EntityManager,
  definition: AggregateDefinition,
  reactions: Reactions,
  options: BaselineOptions = {},
): Promise<BaselineResult> {
  const subject = `es.baseline(${definition.name})`;
  assertObjectArgument(subject, 'options', options);
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new UsageError(subject, 'batchSize', `must be a positive integer, got ${String(batchSize)}`);
  const version = definition.versionColumn.propertyPath;
  const total = await manager.createQueryBuilder(definition.target, 'aggregate').where(`aggregate.${version} = 0`).getCount();
  if (total > 0 && !definition.baseline) throw missingBaseline(definition, undefined, total);
  const progress: BaselineProgress = { processed: 0, total, baselined: 0 };
  for await (const ids of aggregateIdPages(manager, definition, batchSize, { unversionedOnly: true })) {
    progress.baselined += await manager.transaction(async (transaction) => {
      // Locked, then re-checked: a writer may have adopted a row since the page was read.
      const rows = (await transaction
        .createQueryBuilder(definition.target, 'aggregate')
        .setLock('pessimistic_write')
        .whereInIds(ids as unknown[])
        .getMany()) as ObjectLiteral[];
      const prepared: PreparedBaseline[] = [];
      for (const row of rows) {
        if (definition.versionOf(row) === 0) prepared.push(await prepareBaseline(transaction, definition, row));
      }
      // The batch checked in one query and written in two, whatever its size.
      await assertExactInDatabase(transaction, definition, prepared);
      await insertBaselines(transaction, definition, prepared);
      if (options.dispatch) {
        for (const { event } of prepared) await reactions.afterInsert(transaction, definition, event);
      }
      return prepared.length;
    });
    progress.processed += ids.length;
    options.onProgress?.({ ...progress });
  }
  return { processed: progress.processed, baselined: progress.baselined };
}
