import type { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import type { Projections } from '../projections/projections';
import { withTimeout } from '../reactors/with-timeout';
import { libraryObject, OUTBOX_TABLE } from '../schema/event-sourcing-schema';

/**
 * `ok`: working. `degraded`: working, with work piling up or failing (events are still written;
 * reactors or projections lag). `down`: the part cannot be reached.
 */
export type HealthStatus = 'ok' | 'degraded' | 'down';

/** Thresholds of `es.health()`. */
export interface HealthOptions {
  /**
   * How long (ms) each check may take; a check that takes longer counts as down. Checks run at
   * the same time, so `health()` answers within about this long whatever is unreachable.
   * @defaultValue 2000
   */
  timeout?: number;
  /**
   * The outbox is degraded when its oldest row not yet handed to the queue is older than this
   * (ms): no relay is running, or the queue is unreachable.
   * @defaultValue 30000
   */
  outboxMaxAgeMs?: number;
  /**
   * Failed jobs are degraded when more than this many async reactor jobs failed for good.
   * @defaultValue 0
   */
  maxFailedJobs?: number;
  /**
   * A projection is degraded when its oldest unhandled event is older than this (seconds), or
   * when its last batch failed.
   * @defaultValue 60
   */
  projectionMaxLagSeconds?: number;
}

/** One part of {@link EventSourcingHealth}. */
export interface HealthCheck {
  /** How the part is doing. */
  readonly status: HealthStatus;
  /** Why the part is down or degraded, when it is. */
  readonly reason?: string;
}

/** A round trip to PostgreSQL. */
export interface DatabaseHealth extends HealthCheck {
  /** The round trip's time in milliseconds; null when down. */
  readonly latencyMs: number | null;
}

/** A round trip to the reactor queue (Redis, or BullMQ's PostgreSQL backend). */
export interface QueueHealth extends HealthCheck {
  /** Whether a queue is configured; without one the part is ok. */
  readonly configured: boolean;
  /** The round trip's time in milliseconds; null when down or not configured. */
  readonly latencyMs: number | null;
}

/** The outbox backlog: rows whose jobs are not in the queue yet. */
export interface OutboxHealth extends HealthCheck {
  /** Rows not handed to the queue yet; null when the database is down. */
  readonly pending: number | null;
  /** The age of the oldest of them in milliseconds; null when there are none, or unknown. */
  readonly oldestAgeMs: number | null;
}

/** Async reactor jobs that failed for good (attempts used up), still in the queue's failed set. */
export interface FailedJobsHealth extends HealthCheck {
  /** How many; null when the queue is down. */
  readonly count: number | null;
}

/** What `es.health()` answers. */
export interface EventSourcingHealth {
  /** Down when the database is; degraded when any other part is down or degraded; else ok. */
  readonly status: HealthStatus;
  /** PostgreSQL. */
  readonly database: DatabaseHealth;
  /** The reactor queue. */
  readonly queue: QueueHealth;
  /** The outbox backlog. */
  readonly outbox: OutboxHealth;
  /** Reactor jobs failed for good. */
  readonly failedJobs: FailedJobsHealth;
  /** Each projection with a checkpoint row or run by this instance; left out when there are none. */
  readonly projections?: readonly ProjectionHealth[];
}

/** One projection in {@link EventSourcingHealth}. */
export interface ProjectionHealth extends HealthCheck {
  /** The projection's name. */
  readonly name: string;
  /** Events not handled yet (null for a projection this process does not run). */
  readonly lagEvents: number | null;
  /** Age of the oldest of them, in seconds. */
  readonly lagSeconds: number | null;
}

const DEFAULTS = { timeout: 2000, outboxMaxAgeMs: 30_000, maxFailedJobs: 0, projectionMaxLagSeconds: 60 };

/** What a health check reads. */
export interface HealthSources {
  readonly dataSource: DataSource;
  /** The BullMQ queue, when one is configured. */
  readonly queue: Queue | undefined;
  readonly projections: Projections;
}

/**
 * Checks database, queue, outbox, failed jobs and projections at the same time, each bounded by
 * `timeout`, and never throws for an unreachable part: it reports it.
 */
export async function checkHealth(sources: HealthSources, options: HealthOptions): Promise<EventSourcingHealth> {
  assertObjectArgument('es.health', 'options', options);
  const limits = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (key === 'timeout' && value === 0)) {
      throw new UsageError('es.health', key, `must be a ${key === 'timeout' ? 'positive' : 'non-negative'} number, got ${String(value)}`);
    }
    limits[key] = value;
  }
  const bounded = <T>(work: () => Promise<T>, what: string) => withTimeout(work(), limits.timeout, what);
  const [database, outbox, queue, projections] = await Promise.all([
    settle(() => bounded(() => sources.dataSource.query('SELECT 1'), 'the database check')),
    settle(() => bounded(() => outboxBacklog(sources.dataSource), 'the outbox check')),
    sources.queue ? settle(() => bounded(() => sources.queue!.getJobCounts('failed'), 'the queue check')) : undefined,
    settle(() => bounded(() => sources.projections.status(), 'the projections check')),
  ]);

  const databasePart = database.ok
    ? { status: 'ok' as const, latencyMs: database.ms }
    : { status: 'down' as const, latencyMs: null, reason: database.reason };
  const queuePart = !queue
    ? { status: 'ok' as const, configured: false, latencyMs: null }
    : queue.ok
      ? { status: 'ok' as const, configured: true, latencyMs: queue.ms }
      : { status: 'down' as const, configured: true, latencyMs: null, reason: queue.reason };
  const outboxPart = !outbox.ok
    ? { status: 'down' as const, pending: null, oldestAgeMs: null, reason: outbox.reason }
    : outbox.value.oldestAgeMs !== null && outbox.value.oldestAgeMs > limits.outboxMaxAgeMs
      ? { status: 'degraded' as const, ...outbox.value, reason: `the oldest outbox row waits for ${Math.round(outbox.value.oldestAgeMs)} ms (more than ${limits.outboxMaxAgeMs}): is a relay running, and the queue reachable?` }
      : { status: 'ok' as const, ...outbox.value };
  const failed = !queue ? 0 : queue.ok ? (queue.value.failed ?? 0) : null;
  const failedPart =
    failed === null
      ? { status: 'down' as const, count: null, reason: 'the queue cannot be reached' }
      : failed > limits.maxFailedJobs
        ? { status: 'degraded' as const, count: failed, reason: `${failed} async reactor job${failed === 1 ? '' : 's'} failed for good (more than ${limits.maxFailedJobs})` }
        : { status: 'ok' as const, count: failed };
  const projectionParts = projections.ok
    ? projections.value.map((projection): ProjectionHealth => {
        const base = { name: projection.name, lagEvents: projection.lag?.events ?? null, lagSeconds: projection.lag?.seconds ?? null };
        if (projection.lastError) return { ...base, status: 'degraded', reason: `its last batch failed: ${projection.lastError.message}` };
        if (projection.lag && projection.lag.seconds > limits.projectionMaxLagSeconds) {
          return { ...base, status: 'degraded', reason: `its oldest unhandled event is ${Math.round(projection.lag.seconds)} s old (more than ${limits.projectionMaxLagSeconds})` };
        }
        return { ...base, status: 'ok' };
      })
    : [];

  const others: HealthStatus[] = [queuePart.status, outboxPart.status, failedPart.status, ...projectionParts.map((part) => part.status)];
  const status: HealthStatus = databasePart.status === 'down' ? 'down' : others.some((part) => part !== 'ok') ? 'degraded' : 'ok';
  return {
    status,
    database: databasePart,
    queue: queuePart,
    outbox: outboxPart,
    failedJobs: failedPart,
    ...(projectionParts.length > 0 ? { projections: projectionParts } : {}),
  };
}

/** Outbox rows not handed to the queue yet, and the age of the oldest. */
export async function outboxBacklog(dataSource: DataSource): Promise<{ pending: number; oldestAgeMs: number | null }> {
  const [row]: { pending: number; oldest: number | null }[] = await dataSource.query(
    `SELECT count(*)::int AS pending, (extract(epoch FROM clock_timestamp() - min(created_at)) * 1000)::float8 AS oldest
     FROM ${libraryObject(dataSource.driver, OUTBOX_TABLE)} WHERE enqueued_at IS NULL`,
  );
  return { pending: row.pending, oldestAgeMs: row.oldest === null ? null : Math.max(0, row.oldest) };
}

type Settled<T> = { ok: true; value: T; ms: number } | { ok: false; reason: string };

async function settle<T>(work: () => Promise<T>): Promise<Settled<T>> {
  const started = performance.now();
  try {
    const value = await work();
    return { ok: true, value, ms: Math.round((performance.now() - started) * 10) / 10 };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}
