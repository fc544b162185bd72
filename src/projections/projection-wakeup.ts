import { createHash } from 'node:crypto';
import type { DataSource, Driver } from 'typeorm';

/** How long commits are gathered into one notification. */
export const NOTIFY_DEBOUNCE_MS = 50;

/**
 * The LISTEN/NOTIFY channel telling projection runners that events were committed: one per
 * database and DataSource `schema`. A schema name could be longer than a channel name may be
 * (63 bytes), so it goes in as a hash.
 */
export function wakeUpChannel(driver: Driver): string {
  const schema = (driver.options as { schema?: string }).schema;
  return schema ? `es_events_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}` : 'es_events';
}

/**
 * Wakes the projection runners of every process after this process committed events: one
 * `pg_notify` per burst of commits, sent after `NOTIFY_DEBOUNCE_MS` on a pooled connection of its
 * own, in no writer's transaction.
 *
 * Not a trigger on the events tables: NOTIFY in a transaction takes a database-wide lock at
 * commit to queue the notification, which would put every writer's commit in one line. Sent
 * here, a process pays one cheap statement per burst. A notification that never arrives (the
 * statement failed, the process died) costs latency only: runners poll as well.
 */
export class CommitNotifier {
  readonly #dataSource: DataSource;
  readonly #channel: string;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #closed = false;

  constructor(dataSource: DataSource, onError: (error: unknown) => void) {
    this.#dataSource = dataSource;
    this.#channel = wakeUpChannel(dataSource.driver);
    this.#onError = onError;
  }

  /** Events were committed: notify soon, once for everything committed until then. */
  committed(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const sending = this.#dataSource
        .query(`SELECT pg_notify($1, '')`, [this.#channel])
        .then(() => undefined, (error: unknown) => this.#onError(error))
        .finally(() => {
          if (this.#sending === sending) this.#sending = undefined;
        });
      this.#sending = sending;
    }, NOTIFY_DEBOUNCE_MS);
    // A process about to exit need not stay for a wake-up call: runners poll anyway.
    this.#timer.unref();
  }

  /** Drops a pending notification and waits for one being sent, so the DataSource can be destroyed. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sending;
  }
}
