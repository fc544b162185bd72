import { createPostgresBackend, Queue, Worker, type ConnectionOptions, type Processor, type WorkerOptions } from 'bullmq';
import type { DataSource } from 'typeorm';
import type { Dispatcher } from './dispatcher';
import type { OutboxRow } from './outbox';
import type { ReactorQueueOptions } from './reactor-queue-options';
import { redisConnectionFromUrl } from './redis-connection';
import { signJob, verifyJobSignature, type SignedJobFields } from './job-signature';

/** What a reactor job carries: references to the event, never its body. */
export interface ReactorJobData {
  /** The events table, e.g. `'subscription_events'`. */
  table: string;
  /** The event's row id in that table. */
  id: number;
  /** The event type, for dashboards and logs. */
  type: string;
  /** The reactor's name. */
  reactor: string;
  /** The event's global position. */
  position: number;
  /** The outbox row's key, the last part of the job id. */
  key: string;
  /** HMAC of the job id and the fields above with the database's secret; see docs/security.md. */
  signature: string;
  /**
   * The W3C trace context of the span that wrote the event, when it was traced (not signed: it
   * only places the job's span in a trace).
   */
  traceparent?: string;
  /** Its vendor state, if any. */
  tracestate?: string;
}

/** Options of `es.worker()`, passed on to BullMQ's Worker. */
export interface ReactorWorkerOptions {
  /**
   * Jobs run at once by this worker.
   * @defaultValue 1
   */
  concurrency?: number;
  /**
   * Milliseconds a job stays locked to this worker without renewal; past it, the job is
   * considered stalled and runs again elsewhere.
   * @defaultValue 30000
   */
  lockDuration?: number;
  /**
   * Milliseconds between checks for stalled jobs.
   * @defaultValue 30000
   */
  stalledInterval?: number;
  /**
   * How many times a job may stall (its worker died or froze mid-run) before it is failed. A
   * stall does not count as an attempt, so the default lets a job survive as many worker crashes
   * in a row as it has attempts.
   * @defaultValue the largest `attempts` of the queue and its reactors (3 unless configured)
   */
  maxStalledCount?: number;
  /**
   * Run an outbox relay beside the worker.
   * @defaultValue true
   */
  relay?: boolean;
}

function redisConnection(connection: ReactorQueueOptions['connection']): ConnectionOptions {
  if (connection === undefined) return { host: '127.0.0.1', port: 6379 };
  if (typeof connection !== 'string') return connection as ConnectionOptions;
  return redisConnectionFromUrl(connection);
}

function postgresConnection(connection: ReactorQueueOptions['connection'], dataSource: DataSource): Record<string, unknown> {
  if (typeof connection === 'string') return { connectionString: connection, schema: 'bullmq', migrate: true };
  if (connection) return { schema: 'bullmq', migrate: true, ...(connection as Record<string, unknown>) };
  // The DataSource's own database, with its TLS settings: a queue must not downgrade them.
  const options = dataSource.options as { url?: string; host?: string; port?: number; username?: string; password?: string; database?: string; ssl?: unknown };
  const ssl = options.ssl === undefined ? {} : { ssl: options.ssl };
  return options.url
    ? { connectionString: options.url, schema: 'bullmq', migrate: true, ...ssl }
    : { host: options.host, port: options.port, user: options.username, password: options.password, database: options.database, schema: 'bullmq', migrate: true, ...ssl };
}

/** Whether job data has the shape of a reactor job's (its signature is checked apart). */
export function isReactorJobData(data: unknown): data is ReactorJobData {
  if (data === null || typeof data !== 'object') return false;
  const candidate = data as Partial<ReactorJobData>;
  return (
    typeof candidate.table === 'string' &&
    typeof candidate.type === 'string' &&
    typeof candidate.reactor === 'string' &&
    typeof candidate.key === 'string' &&
    Number.isSafeInteger(candidate.id) &&
    (candidate.id as number) > 0 &&
    Number.isSafeInteger(candidate.position)
  );
}

/**
 * The BullMQ side of async reactors: turns outbox rows into jobs with ids unique per database,
 * event and reactor, and builds workers for the same queue.
 */
export class ReactorQueue {
  readonly name: string;
  readonly #queue: Queue;
  readonly #options: ReactorQueueOptions;
  readonly #identity: string;
  readonly #secret: string;
  readonly #dispatcher: Dispatcher;
  readonly #connection: ConnectionOptions | Record<string, unknown>;
  readonly #postgres: boolean;

  constructor(
    options: ReactorQueueOptions,
    database: { identity: string; secret: string },
    dispatcher: Dispatcher,
    dataSource: DataSource,
    onError: (error: Error) => void,
  ) {
    this.#options = options;
    const identity = database.identity;
    this.#identity = identity;
    this.#secret = database.secret;
    this.#dispatcher = dispatcher;
    // One queue per database by default: workers of two databases sharing one Redis (dev and
    // test, say) never pick up each other's jobs, and a reset database starts a fresh queue.
    this.name = options.name ?? `typeorm-event-sourcing-${identity.slice(0, 8)}`;
    this.#postgres = options.backend === 'postgres';
    this.#connection = this.#postgres ? postgresConnection(options.connection, dataSource) : redisConnection(options.connection);
    const telemetry = options.telemetry === undefined ? {} : { telemetry: options.telemetry };
    this.#queue = this.#postgres
      ? new Queue(this.name, { connection: this.#connection as never, ...telemetry }, createPostgresBackend as never)
      : new Queue(this.name, {
          connection: this.#connection as ConnectionOptions,
          ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
          ...telemetry,
        });
    this.#queue.on('error', onError);
  }

  /**
   * The job id: database identity, global event position, reactor and the outbox row's key (a hash
   * including the writing transaction's id, see `jobKeySql`), so that an id is never reused for
   * another event, even when positions repeat after a restore or ids after a reset, and can be
   * computed again from the event row. `:` is not allowed by BullMQ.
   */
  jobId(row: Pick<OutboxRow, 'position' | 'reactor' | 'jobKey'>): string {
    return `${this.#identity}.${row.position}.${row.reactor}.${row.jobKey}`;
  }

  /**
   * The job's data if it was signed with this database's secret for this job id, else why not.
   * A job added by another database, made up by someone who can write to Redis, or whose data
   * was moved under another id is refused.
   */
  verify(jobId: string | undefined, data: unknown): { data: ReactorJobData } | { refused: string } {
    if (!this.ownsJob(jobId)) {
      return { refused: `job ${jobId} was added by another database than this worker's (${this.#identity}): give each database a queue name of its own` };
    }
    if (!isReactorJobData(data)) return { refused: `job ${jobId} has malformed data: not a job this library added` };
    const fields: SignedJobFields = { jobId: jobId!, ...data };
    if (!verifyJobSignature(this.#secret, fields, data.signature)) {
      return { refused: `job ${jobId} is not signed by this database: its data or id was changed, or it was added by someone else` };
    }
    return { data };
  }

  /**
   * Whether a job was added for this database. Another database's job (one sharing the queue
   * name, or a database since reset) has the same table, id and reactor, but not the same event.
   */
  ownsJob(jobId: string | undefined): boolean {
    return jobId !== undefined && jobId.startsWith(`${this.#identity}.`);
  }

  /** This database's identity, the first part of every job id. */
  get identity(): string {
    return this.#identity;
  }

  /** Adds one job per row; a job whose id exists already is ignored by BullMQ. */
  async add(rows: readonly OutboxRow[]): Promise<void> {
    const keepCompletedFor = this.#options.keepCompletedFor ?? 86_400;
    await this.#queue.addBulk(
      rows.map((row) => {
        const binding = this.#dispatcher.asyncReactor(row.reactor);
        const jobId = this.jobId(row);
        const fields = { table: row.eventsTable, id: row.eventId, type: row.eventType, reactor: row.reactor, position: row.position, key: row.jobKey };
        const data: ReactorJobData = { ...fields, signature: signJob(this.#secret, { jobId, ...fields }), ...row.trace };
        return {
          name: row.reactor,
          data,
          opts: {
            jobId,
            attempts: binding?.attempts ?? this.#options.attempts ?? 3,
            backoff: { type: 'exponential', delay: binding?.backoff ?? this.#options.backoff ?? 1000 },
            removeOnComplete: { age: keepCompletedFor },
            removeOnFail: false,
          },
        };
      }),
    );
  }

  /** Whether a row's job is in the queue, and in which state (`'unknown'` once Redis forgot it). */
  async jobState(row: OutboxRow): Promise<string> {
    return this.#queue.getJobState(this.jobId(row));
  }

  /** Jobs not finished yet: waiting, active, delayed (retrying) or prioritized. */
  async unfinishedJobs(): Promise<number> {
    const counts = await this.#queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    return Object.values(counts).reduce((sum, count) => sum + count, 0);
  }

  /** The underlying BullMQ queue, for dashboards (bull-board) and inspection. */
  get queue(): Queue {
    return this.#queue;
  }

  createWorker(processor: Processor<ReactorJobData>, options: ReactorWorkerOptions): Worker<ReactorJobData> {
    const tuning = {
      prefix: this.#options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDuration,
      stalledInterval: options.stalledInterval,
      maxStalledCount: options.maxStalledCount ?? this.#dispatcher.maxAttempts(this.#options.attempts ?? 3),
      telemetry: this.#options.telemetry,
    };
    const workerOptions: WorkerOptions = {
      connection: this.#postgres ? (this.#connection as never) : ({ ...(this.#connection as object), maxRetriesPerRequest: null } as ConnectionOptions),
      // BullMQ takes an undefined option as a value, not as "use the default".
      ...Object.fromEntries(Object.entries(tuning).filter(([, value]) => value !== undefined)),
    };
    return this.#postgres
      ? new Worker<ReactorJobData>(this.name, processor, workerOptions as never, createPostgresBackend as never)
      : new Worker<ReactorJobData>(this.name, processor, workerOptions);
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}
