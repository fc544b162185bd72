import type { DataSource } from 'typeorm';
import { UsageError } from '../errors/usage-error';
import {
  claimEnqueuedOutboxRows,
  claimOutboxRows,
  deleteOutboxRows,
  markOutboxRowsEnqueued,
  releaseOutboxClaim,
  type OutboxClaim,
} from './outbox';
import { settleOutboxRows } from './reactions';
import type { ReactorQueue } from './reactor-queue';
import type { RelayOptions } from './reactor-queue-options';
import { withTimeout } from './with-timeout';
import { instrumentationOf } from '../observability/instrumentation';

/**
 * Delivers outbox rows that the after-commit hand-over left behind (a process killed between
 * COMMIT and enqueue, Redis down, an enqueue that failed). No transaction is open while it waits
 * for the queue, so a slow or frozen Redis never holds back the oldest running transaction
 * (VACUUM, projections reading below the snapshot's xmin). A batch goes in three short steps:
 *
 * 1. claim: one statement, committed at once, sets `claimed_until` (now + `lease`) on up to
 *    `batchSize` rows older than `grace` that no relay holds, chosen with `FOR UPDATE SKIP LOCKED`;
 * 2. add the jobs to the queue, giving up after a quarter of the lease at most;
 * 3. delete the rows (or, with `keepOutboxUntil: 'completed'`, mark them enqueued), or on
 *    failure release the claim so that the next relay retries them at once.
 *
 * Many relays on many machines thus never hand over the same row twice while each finishes within
 * its lease. A relay that dies after claiming leaves its rows to the others once the lease
 * expires; a job added twice anyway (a crash after the add, a claim that expired mid-add) is
 * ignored by BullMQ because its id exists. With `keepOutboxUntil: 'completed'` it also adds
 * again, in the same three steps, the jobs a Redis without persistence forgot.
 */
export class OutboxRelay {
  readonly #dataSource: DataSource;
  readonly #queue: ReactorQueue;
  readonly #interval: number;
  readonly #grace: number;
  readonly #batchSize: number;
  readonly #recheckAfter: number;
  readonly #lease: number;
  /** How long one queue call may take: a claim covers at most two of them (recheckOnce). */
  readonly #queueTimeout: number;
  readonly #keepUntil: 'enqueued' | 'completed';
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(
    dataSource: DataSource,
    queue: ReactorQueue,
    options: RelayOptions,
    onError: (error: unknown) => void,
    keepUntil: 'enqueued' | 'completed' = 'enqueued',
  ) {
    this.#dataSource = dataSource;
    this.#queue = queue;
    this.#interval = options.interval ?? 1000;
    this.#grace = options.grace ?? 5000;
    this.#batchSize = options.batchSize ?? 100;
    this.#recheckAfter = options.recheckAfter ?? 60_000;
    const queueTimeout = Math.max(this.#interval, 5000);
    const lease = options.lease ?? Math.max(30_000, 4 * queueTimeout);
    if (typeof lease !== 'number' || !Number.isFinite(lease) || lease < 100) {
      throw new UsageError('relay options', 'lease', `must be a number of milliseconds, at least 100, got ${String(lease)}`);
    }
    this.#lease = lease;
    // Two queue calls and three short statements must fit in the lease with room to spare, or
    // another relay could take the rows while this one is still adding them.
    this.#queueTimeout = Math.min(queueTimeout, Math.floor(lease / 4));
    this.#keepUntil = keepUntil;
    this.#onError = onError;
  }

  /** Starts relaying every `interval` milliseconds. */
  start(): this {
    this.#schedule(0);
    return this;
  }

  /** Relays one batch now (whether the loop runs or not); returns how many rows it handed to the queue. */
  async relayOnce(): Promise<number> {
    const manager = this.#dataSource.manager;
    const claimed = await claimOutboxRows(manager, { graceMs: this.#grace, limit: this.#batchSize, leaseMs: this.#lease });
    if (claimed.rows.length === 0) return 0;
    const instrumentation = instrumentationOf(this.#dataSource);
    const attributes = { 'typeorm_es.queue': this.#queue.name, 'typeorm_es.jobs': claimed.rows.length };
    return instrumentation.span(
      'es.relay',
      attributes,
      async () => {
        try {
          await this.#orRelease(claimed, () => withTimeout(this.#queue.add(claimed.rows), this.#queueTimeout, 'relaying outbox rows to the queue'));
        } catch (error) {
          instrumentation.count('typeorm_es.relay.failures', 1);
          throw error;
        }
        instrumentation.count('typeorm_es.relay.deliveries', claimed.rows.length);
        // The jobs are in the queue: whatever happens to the claim now, the rows are done with.
        await settleOutboxRows(manager, claimed.rows, this.#keepUntil);
        return claimed.rows.length;
      },
      { kind: 'producer' },
    );
  }

  /**
   * With outbox rows kept until their jobs complete: looks at one batch of rows enqueued more than
   * `recheckAfter` ago, adds again the jobs the queue has lost, and drops rows whose jobs
   * completed. Returns how many jobs it added again.
   */
  async recheckOnce(): Promise<number> {
    if (this.#keepUntil !== 'completed') return 0;
    const manager = this.#dataSource.manager;
    const claimed = await claimEnqueuedOutboxRows(manager, { ageMs: this.#recheckAfter, limit: this.#batchSize, leaseMs: this.#lease });
    const rows = claimed.rows;
    if (rows.length === 0) return 0;
    const checked = await this.#orRelease(claimed, async () => {
      const states = await withTimeout(Promise.all(rows.map((row) => this.#queue.jobState(row))), this.#queueTimeout, 'reading job states');
      const missing = rows.filter((_, index) => states[index] === 'unknown');
      if (missing.length > 0) {
        await withTimeout(this.#queue.add(missing), this.#queueTimeout, 'adding lost jobs again');
        instrumentationOf(this.#dataSource).count('typeorm_es.relay.deliveries', missing.length);
      }
      return { missing, states };
    });
    // A job that completed, or failed for good, is BullMQ's to report from here on.
    const finished = rows.filter((_, index) => checked.states[index] === 'completed' || checked.states[index] === 'failed');
    await deleteOutboxRows(manager, finished.map((row) => row.id));
    // Checked again in another `recheckAfter`; the claim ends here.
    await markOutboxRowsEnqueued(
      manager,
      rows.filter((row) => !finished.includes(row)).map((row) => row.id),
    );
    return checked.missing.length;
  }

  /** Stops the loop and waits for a batch in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#drain().finally(() => {
        this.#running = undefined;
        this.#schedule(this.#interval);
      });
    }, delay);
    this.#timer.unref();
  }

  /** Runs queue calls for claimed rows; if they fail, gives the rows back (best effort: the lease covers the rest). */
  async #orRelease<T>(claimed: OutboxClaim, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      await releaseOutboxClaim(this.#dataSource.manager, claimed).catch(() => undefined);
      throw error;
    }
  }

  async #drain(): Promise<void> {
    try {
      while (!this.#closed && (await this.relayOnce()) === this.#batchSize);
      if (!this.#closed) await this.recheckOnce();
    } catch (error) {
      this.#onError(error);
    }
  }
}
