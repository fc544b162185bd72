import type { ConnectionOptions, Telemetry } from 'bullmq';

/** Options of the relay that delivers outbox rows the after-commit hand-over left behind. */
export interface RelayOptions {
  /**
   * Milliseconds between two looks at the outbox.
   * @defaultValue 1000
   */
  interval?: number;
  /**
   * Only rows older than this many milliseconds are relayed, so the relay does not race the
   * normal after-commit hand-over.
   * @defaultValue 5000
   */
  grace?: number;
  /**
   * Rows claimed and handed to the queue in one go.
   * @defaultValue 100
   */
  batchSize?: number;
  /**
   * Milliseconds a relay holds the rows it claimed (`es_outbox.claimed_until`) while it adds their
   * jobs, with no transaction open. Other relays skip them until then; a relay that died or hung
   * after claiming leaves them to the others once it has passed. The relay gives up on a queue
   * call after `max(interval, 5000)` ms, or a quarter of the lease if that is shorter, so a claim
   * always outlives the work it covers.
   * @defaultValue `max(30000, 4 * max(interval, 5000))`
   */
  lease?: number;
  /**
   * With `keepOutboxUntil: 'completed'`: milliseconds after which the relay checks that the job
   * of a row still in the outbox is still in the queue, and adds it again if Redis lost it.
   * @defaultValue 60000
   */
  recheckAfter?: number;
}

/** Where async reactor jobs go: a BullMQ queue on Redis (default) or on PostgreSQL. */
export interface ReactorQueueOptions {
  /**
   * `'redis'` (ioredis) or `'postgres'`, BullMQ's PostgreSQL backend for teams without Redis.
   * @defaultValue `'redis'`
   */
  backend?: 'redis' | 'postgres';
  /**
   * For Redis, ioredis options such as `{ host, port }`, or a `redis://` URL. For PostgreSQL, a
   * connection string or pool config (`{ connectionString, schema }`).
   * @defaultValue Redis on 127.0.0.1:6379; for PostgreSQL, the DataSource's own database, schema `bullmq`
   */
  connection?: ConnectionOptions | string | Record<string, unknown>;
  /**
   * The BullMQ queue name. Databases must not share one: a worker refuses another database's jobs.
   * @defaultValue `'typeorm-event-sourcing-'` followed by the first 8 characters of the database's identity
   */
  name?: string;
  /**
   * The Redis key prefix.
   * @defaultValue `'bull'`
   */
  prefix?: string;
  /**
   * Runs of a job before it stays in the failed set; a reactor's own `attempts` wins.
   * @defaultValue 3
   */
  attempts?: number;
  /**
   * First retry delay in milliseconds, doubled on each retry; a reactor's own `backoff` wins.
   * @defaultValue 1000
   */
  backoff?: number;
  /**
   * Seconds a completed job is kept. Its id keeps a late duplicate from running again meanwhile.
   * @defaultValue 86400
   */
  keepCompletedFor?: number;
  /**
   * When an outbox row is deleted: once its job is in the queue (`'enqueued'`), or once the job
   * has completed (`'completed'`). With `'completed'` the relay re-adds jobs that Redis lost (a
   * restart without persistence, a failover to a replica that had not received them), so nothing
   * is lost even with a Redis that forgets, at the cost of one more write per job.
   * @defaultValue `'enqueued'`
   */
  keepOutboxUntil?: 'enqueued' | 'completed';
  /**
   * Milliseconds each step of closing (a worker, a relay, the queue) may take before its
   * connections are dropped: a Redis that accepts connections but does not answer never lets a
   * graceful close finish.
   * @defaultValue 5000
   */
  closeTimeout?: number;
  /** The relay's timing. */
  relay?: RelayOptions;
  /**
   * BullMQ's own telemetry, passed to the reactor queue and every worker as their `telemetry`
   * option: `new BullMQOtel({ tracerName: 'my-app' })` from `bullmq-otel` adds BullMQ's spans for
   * adding and processing jobs, beside the library's (see docs/observability.md).
   * @defaultValue none
   */
  telemetry?: Telemetry;
}
