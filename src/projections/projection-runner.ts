import type { DataSource, QueryRunner } from 'typeorm';
import { runBatch, type BatchJob, type BatchResult } from './projection-batch';
import type { ProjectionCheckpoints } from './projection-checkpoints';
import { closeSession, openSession, projectionLockName, tryAdvisoryLock } from './session-lock';

/** What a runner needs: the batch to repeat, where to hear of new events, and its timings. */
export interface RunnerSetup {
  readonly dataSource: DataSource;
  readonly checkpoints: ProjectionCheckpoints;
  readonly job: BatchJob;
  /** The LISTEN/NOTIFY channel of commits that wrote events. */
  readonly channel: string;
  /** Stops the runner: the caller's signal or the EventSourcing instance closing. */
  readonly signal: AbortSignal;
  readonly pollInterval: number;
  readonly retryDelay: number;
  readonly maxRetryDelay: number;
  /** Receives every failure the runner retries past. */
  readonly onError: (error: unknown) => void;
}

type Woken = 'timeout' | 'woken' | 'stopped';

/** The first wait before looking again at events held back by an open transaction. */
const HELD_BACK_RECHECK_MS = 20;

/** A wake-up that may come while nobody waits: kept until the next wait, which then returns at once. */
class Alarm {
  #pending = false;
  #listener: (() => void) | undefined;

  ring(): void {
    if (this.#listener) this.#listener();
    else this.#pending = true;
  }

  /** Waits up to `ms`; returns early when the alarm rings (or rang meanwhile) or `signal` aborts. */
  wait(ms: number, signal: AbortSignal): Promise<Woken> {
    if (signal.aborted) return Promise.resolve('stopped');
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve('woken');
    }
    return new Promise((resolve) => {
      const done = (why: Woken) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#listener = undefined;
        resolve(why);
      };
      const timer = setTimeout(() => done('timeout'), ms);
      const onAbort = () => done('stopped');
      signal.addEventListener('abort', onAbort, { once: true });
      this.#listener = () => done('woken');
    });
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<Woken> {
  return new Alarm().wait(ms, signal);
}

/** pg's client as TypeORM's query runner holds it: an EventEmitter with LISTEN's notifications. */
interface PgClient {
  on(event: 'notification', listener: (message: { channel: string }) => void): unknown;
  on(event: 'error' | 'end', listener: () => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * The runner's own connection, for as long as it runs: it holds the projection's session
 * advisory lock and LISTENs for commits. Losing it loses the lock, so the runner stops
 * processing at once and goes back to acquiring.
 */
class LockSession {
  #lost = false;
  readonly #queryRunner: QueryRunner;
  readonly #client: PgClient;
  readonly #onLost: () => void;
  readonly #onNotification: (message: { channel: string }) => void;

  private constructor(queryRunner: QueryRunner, client: PgClient, channel: string, alarm: Alarm) {
    this.#queryRunner = queryRunner;
    this.#client = client;
    this.#onLost = () => {
      this.#lost = true;
      alarm.ring();
    };
    this.#onNotification = (message) => {
      if (message.channel === channel) alarm.ring();
    };
    client.on('error', this.#onLost);
    client.on('end', this.#onLost);
    client.on('notification', this.#onNotification);
  }

  static async open(dataSource: DataSource, channel: string, alarm: Alarm): Promise<LockSession> {
    const queryRunner = await openSession(dataSource);
    const client = (queryRunner as unknown as { databaseConnection: PgClient }).databaseConnection;
    return new LockSession(queryRunner, client, channel, alarm);
  }

  get lost(): boolean {
    return this.#lost;
  }

  /** Takes the projection's advisory lock if no session holds it. */
  tryLock(lockName: string): Promise<boolean> {
    return tryAdvisoryLock(this.#queryRunner, lockName);
  }

  async listen(channel: string): Promise<void> {
    await this.#queryRunner.query(`LISTEN ${this.#queryRunner.connection.driver.escape(channel)}`);
  }

  /** Notices a connection that died silently (no 'error' or 'end' event). */
  async heartbeat(): Promise<void> {
    try {
      await this.#queryRunner.query('SELECT 1');
    } catch {
      this.#onLost();
    }
  }

  /**
   * Lets the lock go, then ends the connection rather than returning it to the pool: no other
   * user of the pool inherits the LISTEN, and nothing of the session is left behind.
   */
  async close(): Promise<void> {
    this.#client.off('notification', this.#onNotification);
    await closeSession(this.#queryRunner, {
      unlock: !this.#lost,
      discard: true,
      reason: 'projection runner stopped',
      // Ending the connection is no loss to report.
      beforeRelease: () => {
        this.#client.off('error', this.#onLost);
        this.#client.off('end', this.#onLost);
      },
    });
  }
}

/**
 * Runs one projection until its signal aborts: takes the projection's advisory lock on a
 * connection of its own (waiting, polling, while another runner anywhere holds it), then repeats
 * batches, straight on while they come full, otherwise after a notification of new events or
 * `pollInterval`, or sooner while committed events are held back by an older open transaction. A failing batch is retried after `retryDelay`, doubling up to `maxRetryDelay`;
 * its event is never skipped. Exactly-once does not rest on the lock (every batch locks the
 * checkpoint row): the lock makes one runner do the work while the others stand by.
 */
export class ProjectionRunner {
  readonly #setup: RunnerSetup;
  readonly #alarm = new Alarm();
  #failures = 0;

  constructor(setup: RunnerSetup) {
    this.#setup = setup;
  }

  /** Runs until the signal aborts; resolves with the number of events handled. */
  async run(): Promise<number> {
    let processed = 0;
    while (!this.#setup.signal.aborted) {
      const session = await this.#acquire();
      if (!session) break;
      try {
        processed += await this.#follow(session);
      } finally {
        await session.close();
      }
    }
    return processed;
  }

  /** A session holding the lock, or undefined once the signal aborted. */
  async #acquire(): Promise<LockSession | undefined> {
    const { dataSource, signal, channel, job, pollInterval } = this.#setup;
    while (!signal.aborted) {
      let session: LockSession | undefined;
      try {
        session = await LockSession.open(dataSource, channel, this.#alarm);
        while (!signal.aborted && !session.lost) {
          if (await session.tryLock(projectionLockName(dataSource, 'projection', job.name))) {
            await session.listen(channel);
            // Events committed while it waited are read by the first batch anyway.
            return session;
          }
          await pause(pollInterval, signal);
        }
      } catch (error) {
        this.#setup.onError(error);
      }
      await session?.close();
      if (!signal.aborted) await pause(this.#nextRetryDelay(), signal);
    }
    return undefined;
  }

  /** Batches while the session holds the lock; the number of events handled. */
  async #follow(session: LockSession): Promise<number> {
    const { dataSource, checkpoints, job, signal, pollInterval, onError } = this.#setup;
    let processed = 0;
    let lastBeat = Date.now();
    let recheck = HELD_BACK_RECHECK_MS;
    while (!signal.aborted && !session.lost) {
      let result: BatchResult;
      try {
        result = await runBatch(dataSource, checkpoints, job);
      } catch (error) {
        onError(error);
        await pause(this.#nextRetryDelay(), signal);
        continue;
      }
      this.#failures = 0;
      processed += result.processed;
      if (result.processed === job.batchSize) continue;
      if (result.heldBack) {
        // Committed events wait for an older transaction, whose end nobody announces: look
        // again soon, less often the longer it stays open.
        await this.#alarm.wait(Math.min(recheck, pollInterval), signal);
        recheck = Math.min(recheck * 2, pollInterval);
      } else {
        recheck = HELD_BACK_RECHECK_MS;
        await this.#alarm.wait(pollInterval, signal);
      }
      if (Date.now() - lastBeat >= pollInterval) {
        await session.heartbeat();
        lastBeat = Date.now();
      }
    }
    return processed;
  }

  #nextRetryDelay(): number {
    const { retryDelay, maxRetryDelay } = this.#setup;
    const delay = Math.min(retryDelay * 2 ** Math.min(this.#failures, 30), maxRetryDelay);
    this.#failures += 1;
    return delay;
  }
}
