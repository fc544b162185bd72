import type { DataSource } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { eventClassesOf, handlersFor, ownedTablesOf, Projection } from './projection';
import type { BatchJob } from './projection-batch';
import { runBatch } from './projection-batch';
import { ProjectionCheckpoints, type ProjectionFailure } from './projection-checkpoints';
import { rebuildProjection, type ProjectionRebuildMode, type ProjectionRebuildResult } from './projection-rebuild';
import { ProjectionRunner } from './projection-runner';
import { EventStream, sourcesOf, type Checkpoint, type ProjectionLag } from './projection-stream';
import { CommitNotifier, wakeUpChannel } from './projection-wakeup';

/** Options of {@link Projections.catchUp}. */
export interface ProjectionCatchUpOptions {
  /**
   * Events per batch: per transaction, and at most this many event instances in memory. Larger
   * batches commit less often; each one is also a longer transaction, which holds the horizon of
   * every projection back while it runs.
   * @defaultValue 500
   */
  batchSize?: number;
}

/** Options of {@link Projections.run}. */
export interface ProjectionRunOptions extends ProjectionCatchUpOptions {
  /** Stops the runner: `run` resolves once the batch in progress has committed or rolled back. */
  signal?: AbortSignal;
  /**
   * How often (ms) to look for new events without a notification, and how often a runner
   * waiting for another one's lock tries again.
   * @defaultValue 1000
   */
  pollInterval?: number;
  /**
   * The wait (ms) before retrying a failed batch; it doubles with every failure in a row.
   * @defaultValue 1000
   */
  retryDelay?: number;
  /**
   * The longest wait (ms) between retries.
   * @defaultValue 30000
   */
  maxRetryDelay?: number;
}

/** Options of {@link Projections.rebuild}. */
export interface ProjectionRebuildOptions extends ProjectionCatchUpOptions {
  /**
   * `'swap'` (readers never see a half-built read model) or `'in-place'` (the tables are emptied
   * and filled again; readers see them partly built meanwhile). By default swap, unless a table
   * the projection does not own references an owned table by foreign key, or an owned entity is
   * schema-qualified (its own `schema`, or the DataSource's): then in place. Asking for `'swap'`
   * where it cannot be done throws ProjectionRebuildError.
   */
  mode?: ProjectionRebuildMode;
}

export type { ProjectionRebuildMode, ProjectionRebuildResult };

/** What `catchUp` and `run` did. */
export interface ProjectionResult {
  /** Events handled by this call. */
  readonly processed: number;
}

/** One projection as {@link Projections.status} reports it. */
export interface ProjectionStatus {
  /** The projection's name. */
  readonly name: string;
  /** The last event handled, as (transaction id, position); `null` before the first batch. */
  readonly checkpoint: Checkpoint | null;
  /**
   * Events of its types not handled yet. `null` for a projection this process has not been
   * given (a row of `es_projections` only): which event types it reads is known where it runs.
   */
  readonly lag: ProjectionLag | null;
  /** Why its last batch failed; `null` once a batch succeeded after it. */
  readonly lastError: ProjectionFailure | null;
  /** When its checkpoint last moved; `null` for a projection that has no row yet. */
  readonly updatedAt: Date | null;
}

export type { Checkpoint, ProjectionFailure, ProjectionLag };

const DEFAULT_BATCH_SIZE = 500;
const DEFAULTS = { pollInterval: 1000, retryDelay: 1000, maxRetryDelay: 30_000 };

/**
 * The projections of one EventSourcing instance, as `es.projections`: catch a projection up,
 * run it live, rebuild it, and report where each one is.
 */
export class Projections {
  readonly #runtime: ProjectionRuntime;

  /** Made by EventSourcing; use `es.projections`. */
  constructor(runtime: ProjectionRuntime) {
    this.#runtime = runtime;
  }

  /**
   * Handles every event after the projection's checkpoint, a batch per transaction, and resolves
   * once a batch finds fewer events than its size: the end of what has been committed.
   * Exactly once, also while a runner or another catchUp of the same projection runs anywhere
   * (each batch locks the projection's checkpoint row).
   *
   * @throws ProjectionError when a handler throws: that batch rolled back, earlier batches stay,
   * and `status()` shows the event as `lastError`.
   * @throws UsageError for bad options; EventSourcingConfigError for an event class that is not
   * in this DataSource, or an instance that is closed.
   */
  catchUp(projection: Projection, options: ProjectionCatchUpOptions = {}): Promise<ProjectionResult> {
    return this.#runtime.catchUp(projection, options);
  }

  /**
   * Catches the projection up, then follows new events until `signal` aborts or the
   * EventSourcing instance closes; resolves then. One runner per projection works at a time,
   * across processes: a second one waits, and takes over when the first stops or dies. A failing
   * batch is retried with backoff (the error goes to `onError` and `status()`), never skipped.
   *
   * @throws UsageError for bad options; EventSourcingConfigError for an event class that is not
   * in this DataSource, or an instance that is closed.
   */
  run(projection: Projection, options: ProjectionRunOptions = {}): Promise<ProjectionResult> {
    return this.#runtime.run(projection, options);
  }

  /**
   * Every projection of the database (the rows of `es_projections`) and every one given to this
   * instance, by name: checkpoint, lag, last error.
   */
  status(): Promise<ProjectionStatus[]> {
    return this.#runtime.status();
  }

  /**
   * Builds the projection's read model again from the first event, after its handlers changed:
   * the tables it owns (`new Projection(name, { tables })`) are built afresh and its checkpoint
   * ends at the last event handled, from where a runner goes on.
   *
   * By swap (the default where it can be done): the handlers fill fresh copies of the tables in
   * a private schema, a batch per short transaction, while readers and a live runner go on with
   * the live tables; one last transaction catches the copies up, drops the live tables and moves
   * the copies in under the live names (indexes, constraints and sequences included), so readers
   * see the old read model, then the new one, never a half-built one. In place: the tables are
   * emptied and the checkpoint started over in one transaction, then batches catch up as
   * `catchUp` does. A projection that owns no tables is replayed from the first event onto
   * whatever its handlers write: they must be idempotent. See docs/projections.md, "Rebuilding".
   *
   * @throws ProjectionRebuildError when a swap cannot keep what a table has (a trigger, grants, a
   * row security policy, a view on it...) or cannot be done at all (asked for on a table that
   * must be rebuilt in place), when another rebuild of the projection is running, or when a
   * table changed during the rebuild. Nothing was swapped.
   * @throws ProjectionError when a handler throws: by swap, the live tables and the checkpoint
   * are untouched; in place, the batches before it stay, as with `catchUp`.
   * @throws UsageError for bad options; EventSourcingConfigError for an owned class that is not
   * an entity of this DataSource, or a table that does not exist.
   */
  rebuild(projection: Projection, options: ProjectionRebuildOptions = {}): Promise<ProjectionRebuildResult> {
    return this.#runtime.rebuild(projection, options);
  }
}

/**
 * What EventSourcing holds: the state behind `es.projections`, and the hooks the facade calls on
 * commit and on close.
 */
export class ProjectionRuntime {
  readonly projections: Projections;
  readonly #dataSource: DataSource;
  readonly #registry: EventSourcingRegistry;
  readonly #onError: (error: unknown) => void;
  readonly #checkpoints: ProjectionCheckpoints;
  readonly #notifier: CommitNotifier;
  /** The projections given to this instance, by name (the latest of a name): their types make their lag. */
  readonly #known = new Map<string, Projection>();
  readonly #closing = new AbortController();
  readonly #active = new Set<Promise<unknown>>();

  constructor(dataSource: DataSource, registry: EventSourcingRegistry, onError: (error: unknown) => void) {
    this.#dataSource = dataSource;
    this.#registry = registry;
    this.#onError = onError;
    this.#checkpoints = new ProjectionCheckpoints(dataSource.driver);
    this.#notifier = new CommitNotifier(dataSource, onError);
    this.projections = new Projections(this);
  }

  /** Events were committed by this process: wake the runners, wherever they are. */
  committed(): void {
    this.#notifier.committed();
  }

  /** Stops every runner and waits for it and for catchUps to finish their batch. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#notifier.close();
    await Promise.allSettled([...this.#active]);
  }

  catchUp(projection: Projection, options: ProjectionCatchUpOptions): Promise<ProjectionResult> {
    return this.#track(async () => {
      const subject = `es.projections.catchUp(${projectionName(projection)})`;
      assertObjectArgument(subject, 'options', options);
      const job = this.#job(subject, projection, options);
      await this.#checkpoints.register(this.#dataSource.manager, projection.name);
      return { processed: await this.#drain(job) };
    });
  }

  rebuild(projection: Projection, options: ProjectionRebuildOptions): Promise<ProjectionRebuildResult> {
    return this.#track(async () => {
      const subject = `es.projections.rebuild(${projectionName(projection)})`;
      assertObjectArgument(subject, 'options', options);
      const job = this.#job(subject, projection, options);
      const { mode } = options;
      if (mode !== undefined && mode !== 'swap' && mode !== 'in-place') {
        throw new UsageError(subject, 'mode', `must be 'swap' or 'in-place', got ${JSON.stringify(mode) ?? String(mode)}`);
      }
      return rebuildProjection({
        dataSource: this.#dataSource,
        registry: this.#registry,
        checkpoints: this.#checkpoints,
        job,
        subject,
        owned: ownedTablesOf(projection),
        mode,
        assertOpen: () => this.#assertOpen(),
        catchUp: () => this.#drain(job),
      });
    });
  }

  /** Batches on the live checkpoint until one comes back short; the number of events handled. */
  async #drain(job: BatchJob): Promise<number> {
    let processed = 0;
    for (;;) {
      this.#assertOpen();
      const { processed: handled } = await runBatch(this.#dataSource, this.#checkpoints, job);
      processed += handled;
      if (handled < job.batchSize) return processed;
    }
  }

  run(projection: Projection, options: ProjectionRunOptions): Promise<ProjectionResult> {
    return this.#track(async () => {
      const subject = `es.projections.run(${projectionName(projection)})`;
      assertObjectArgument(subject, 'options', options);
      const job = this.#job(subject, projection, options);
      if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
        throw new UsageError(subject, 'signal', 'must be an AbortSignal');
      }
      const timings = {
        pollInterval: positiveNumber(subject, 'pollInterval', options.pollInterval, DEFAULTS.pollInterval),
        retryDelay: positiveNumber(subject, 'retryDelay', options.retryDelay, DEFAULTS.retryDelay),
        maxRetryDelay: positiveNumber(subject, 'maxRetryDelay', options.maxRetryDelay, DEFAULTS.maxRetryDelay),
      };
      await this.#checkpoints.register(this.#dataSource.manager, projection.name);
      const signal = options.signal ? AbortSignal.any([options.signal, this.#closing.signal]) : this.#closing.signal;
      const runner = new ProjectionRunner({
        dataSource: this.#dataSource,
        checkpoints: this.#checkpoints,
        job,
        channel: wakeUpChannel(this.#dataSource.driver),
        signal,
        ...timings,
        onError: this.#onError,
      });
      return { processed: await runner.run() };
    });
  }

  async status(): Promise<ProjectionStatus[]> {
    this.#assertOpen();
    const manager = this.#dataSource.manager;
    const rows = new Map((await this.#checkpoints.rows(manager)).map((row) => [row.name, row]));
    const names = [...new Set([...rows.keys(), ...this.#known.keys()])].sort();
    const statuses: ProjectionStatus[] = [];
    for (const name of names) {
      const row = rows.get(name);
      const projection = this.#known.get(name);
      const checkpoint = row?.checkpoint ?? null;
      statuses.push({
        name,
        checkpoint,
        lag: projection ? await this.#stream(`es.projections.status()`, projection).lag(manager, checkpoint) : null,
        lastError: row?.lastError ?? null,
        updatedAt: row?.updatedAt ?? null,
      });
    }
    return statuses;
  }

  /** The batch job of a projection: checked, and known to this instance from now on. */
  #job(subject: string, projection: Projection, options: ProjectionCatchUpOptions): BatchJob {
    this.#assertOpen();
    if (!(projection instanceof Projection)) throw new UsageError(subject, 'projection', 'must be made with new Projection(name)');
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (typeof batchSize !== 'number' || !Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new UsageError(subject, 'batchSize', `must be a positive integer, got ${String(batchSize)}`);
    }
    const stream = this.#stream(subject, projection);
    this.#known.set(projection.name, projection);
    return {
      name: projection.name,
      stream,
      batchSize,
      handle: async ({ event }, manager) => {
        for (const handler of handlersFor(projection, event)) await handler(event, manager);
      },
    };
  }

  #stream(subject: string, projection: Projection): EventStream {
    const classes = eventClassesOf(projection);
    if (classes.length === 0) throw new UsageError(subject, 'projection', 'handles no events: add a handler with .on(EventClass, handler)');
    return new EventStream(this.#dataSource.driver, sourcesOf(this.#dataSource, this.#registry, subject, classes));
  }

  /** Runs `work` so that close() waits for it. */
  #track<T>(work: () => Promise<T>): Promise<T> {
    const promise = work();
    this.#active.add(promise);
    const forget = () => this.#active.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  #assertOpen(): void {
    if (this.#closing.signal.aborted) throw new EventSourcingConfigError('this EventSourcing instance is closed');
  }
}

function projectionName(projection: unknown): string {
  return projection instanceof Projection ? `'${projection.name}'` : String(projection);
}

function positiveNumber(subject: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new UsageError(subject, name, `must be a positive number of milliseconds, got ${String(value)}`);
  return value;
}
