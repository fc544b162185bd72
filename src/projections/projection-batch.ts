import type { DataSource, EntityManager } from 'typeorm';
import { isConnectionLoss } from '../errors/connection-loss';
import { ProjectionError } from '../errors/projection-error';
import type { ProjectionCheckpoints, ProjectionFailure } from './projection-checkpoints';
import type { Checkpoint, EventStream, StreamedEvent } from './projection-stream';

/** What one batch works on: whose checkpoint, which events, and what to do with each. */
export interface BatchJob {
  /** The checkpoint row's name. */
  readonly name: string;
  readonly stream: EventStream;
  /** Handles one event in the batch's transaction; throwing rolls the batch back. */
  readonly handle: (streamed: StreamedEvent, manager: EntityManager) => Promise<void>;
  /** Events per batch. */
  readonly batchSize: number;
}

/** What a batch did. */
export interface BatchResult {
  /** Events handled (and committed with the checkpoint). */
  readonly processed: number;
  /** The checkpoint after the batch. */
  readonly checkpoint: Checkpoint | null;
  /**
   * Whether a batch that was not full left events behind that are committed but above the
   * horizon (a transaction below them was still open); always false after a full batch.
   */
  readonly heldBack: boolean;
}

/**
 * One batch, in one short transaction: lock the checkpoint row, read the events after it, hand
 * each to the job in order, move the checkpoint to the last, commit. The handlers' writes and the
 * checkpoint commit together or not at all, so a crash at any point neither skips nor repeats an
 * event. Nothing is held between batches: a transaction kept open would hold back the horizon of
 * every projection, this one's included.
 *
 * @throws ProjectionError when a handler throws: the batch rolled back and the failure was
 * recorded on the checkpoint row (a statement of its own, after the rollback).
 */
export async function runBatch(dataSource: DataSource, checkpoints: ProjectionCheckpoints, job: BatchJob): Promise<BatchResult> {
  const queryRunner = dataSource.createQueryRunner();
  let failing: StreamedEvent | undefined;
  try {
    await queryRunner.connect();
    // READ COMMITTED whatever the DataSource's default: after waiting for the row lock, the next
    // statement must see what the batch that held it committed, rather than fail to serialize.
    await queryRunner.startTransaction('READ COMMITTED');
    const manager = queryRunner.manager;
    const locked = await checkpoints.lock(manager, job.name);
    const events = await job.stream.read(manager, locked.checkpoint, job.batchSize);
    for (const streamed of events) {
      failing = streamed;
      await job.handle(streamed, manager);
    }
    failing = undefined;
    const last = events.at(-1)?.event;
    const checkpoint = last ? { txId: last.txId, position: last.position } : locked.checkpoint;
    if (last) await checkpoints.advance(manager, job.name, checkpoint!);
    else if (locked.failed) await checkpoints.clearError(manager, job.name);
    await queryRunner.commitTransaction();
    // After the commit, outside the batch: a failure here is the next batch's to meet.
    const heldBack = events.length < job.batchSize && (await job.stream.heldBack(manager, checkpoint).catch(() => false));
    return { processed: events.length, checkpoint, heldBack };
  } catch (error) {
    if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
    // A lost connection is nobody's handler's fault, and there is no row to write it on.
    if (isConnectionLoss(error)) throw error;
    const failure = failing ? asProjectionError(job.name, failing, error) : error;
    await recordFailure(dataSource, checkpoints, job.name, failing, error);
    throw failure;
  } finally {
    await queryRunner.release().catch(() => undefined);
  }
}

function asProjectionError(name: string, { event, table }: StreamedEvent, cause: unknown): ProjectionError {
  return new ProjectionError(name, event.type, event.id, table, event.position, event.txId, cause);
}

/**
 * Writes the failure (the handler's own error, beside the event it failed on) on the checkpoint
 * row for `status()`. Best effort: the error that stopped
 * the batch is what the caller gets, whether or not this statement got through.
 */
async function recordFailure(
  dataSource: DataSource,
  checkpoints: ProjectionCheckpoints,
  name: string,
  failing: StreamedEvent | undefined,
  error: unknown,
): Promise<void> {
  const failure: ProjectionFailure = {
    message: error instanceof Error ? error.message : String(error),
    eventType: failing?.event.type ?? null,
    eventId: failing?.event.id ?? null,
    table: failing?.table ?? null,
    position: failing?.event.position ?? null,
    at: new Date(),
  };
  await checkpoints.recordFailure(dataSource.manager, name, failure).catch(() => undefined);
}
