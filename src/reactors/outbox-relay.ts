import type { DataSource } from 'typeorm';
import { claimEnqueuedOutboxRows, claimOutboxRows, deleteOutboxRows, markOutboxRowsEnqueued } from './outbox';
import { settleOutboxRows } from './reactions';
import type { ReactorQueue } from './reactor-queue';
import type { RelayOptions } from './reactor-queue-options';
import { withTimeout } from './with-timeout';

/**
 * Delivers outbox rows that the after-commit hand-over left behind (a process killed between
 * COMMIT and enqueue, Redis down, an enqueue that failed). Each batch is claimed with
 * `FOR UPDATE SKIP LOCKED`, added to the queue and deleted in one transaction, so many relays on
 * many machines never hand over the same row twice; a job added twice anyway (a crash after the
 * add) is ignored by BullMQ because its id exists. With `keepOutboxUntil: 'completed'` it also
 * adds again the jobs a Redis without persistence forgot.
 */
export class OutboxRelay {
  readonly #dataSource: DataSource;
  readonly #queue: ReactorQueue;
  readonly #interval: number;
  readonly #grace: number;
  readonly #batchSize: number;
  readonly #recheckAfter: number;
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
    this.#keepUntil = keepUntil;
    this.#onError = onError;
  }

  /** Starts relaying every `interval` milliseconds. */
  start(): this {
    this.#schedule(0);
    return this;
  }

  /** Relays one batch now; returns how many rows it handed to the queue. */
  async relayOnce(): Promise<number> {
    return this.#dataSource.transaction(async (manager) => {
      const rows = await claimOutboxRows(manager, this.#grace, this.#batchSize);
      if (rows.length === 0) return 0;
      await withTimeout(this.#queue.add(rows), Math.max(this.#interval, 5000), 'relaying outbox rows to the queue');
      await settleOutboxRows(manager, rows, this.#keepUntil);
      return rows.length;
    });
  }

  /**
   * With outbox rows kept until their jobs complete: looks at one batch of rows enqueued more than
   * `recheckAfter` ago, adds again the jobs the queue has lost, and drops rows whose jobs
   * completed. Returns how many jobs it added again.
   */
  async recheckOnce(): Promise<number> {
    if (this.#keepUntil !== 'completed') return 0;
    return this.#dataSource.transaction(async (manager) => {
      const rows = await claimEnqueuedOutboxRows(manager, this.#recheckAfter, this.#batchSize);
      if (rows.length === 0) return 0;
      const states = await withTimeout(Promise.all(rows.map((row) => this.#queue.jobState(row))), Math.max(this.#interval, 5000), 'reading job states');
      const lost = rows.filter((_, index) => states[index] === 'unknown');
      // A job that completed, or failed for good, is BullMQ's to report from here on.
      const finished = rows.filter((_, index) => states[index] === 'completed' || states[index] === 'failed');
      if (lost.length > 0) await withTimeout(this.#queue.add(lost), Math.max(this.#interval, 5000), 'adding lost jobs again');
      await deleteOutboxRows(manager, finished.map((row) => row.id));
      await markOutboxRowsEnqueued(
        manager,
        rows.filter((row) => !finished.includes(row)).map((row) => row.id),
      );
      return lost.length;
    });
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

  async #drain(): Promise<void> {
    try {
      while (!this.#closed && (await this.relayOnce()) === this.#batchSize);
      if (!this.#closed) await this.recheckOnce();
    } catch (error) {
      this.#onError(error);
    }
  }
}
