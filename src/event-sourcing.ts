import type { Worker } from 'bullmq';
import type { DataSource, EntityManager } from 'typeorm';
import type { DirectWriteError } from './errors/direct-write-error';
import { EventSourcingConfigError } from './errors/event-sourcing-config-error';
import { isConnectionLoss } from './errors/connection-loss';
import { ConnectionLostError } from './errors/connection-lost-error';
import { EventAlreadyWrittenError } from './errors/event-already-written-error';
import { ImmutableEventError } from './errors/immutable-event-error';
import { assertObjectArgument } from './errors/usage-error';
import type { AggregateEvent, EventMetadata } from './events/aggregate-event';
import { withMetadata } from './events/metadata-scope';
import { markAttached } from './events/attached-event-classes';
import { assertExpectedVersion } from './events/expected-version';
import { pendingWriteOf } from './events/pending-write';
import { TransactionLog, type WrittenEvent } from './events/transaction-log';
import { FastPath } from './events/fast-path';
import { asConcurrencyError } from './events/write-path';
import { EventSourcingRegistry } from './metadata/event-sourcing-registry';
import { Dispatcher } from './reactors/dispatcher';
import type { OutboxRelay } from './reactors/outbox-relay';
import type { ReactorJobData, ReactorWorkerOptions } from './reactors/reactor-queue';
import type { RelayOptions } from './reactors/reactor-queue-options';
import type { AppendOptions, EventSourcingOptions } from './event-sourcing-options';

export type { AppendOptions, EventSourcingOptions } from './event-sourcing-options';
import { ReactorRuntime } from './reactors/reactor-runtime';
import { baselineAll, type BaselineOptions, type BaselineResult } from './baselines/baseline-all';
import { loadHistory } from './replay/history';
import { rebuildAll, rebuildOne, type RebuildAllOptions, type RebuildProgress } from './replay/rebuild';
import { stateAt, type StateAtOptions } from './replay/state-at';
import { verify, type VerifyMismatch, type VerifyOptions } from './replay/verify';
import { eventSourcingSchema, type EventSourcingSchema } from './schema/event-sourcing-schema';
import { ProjectionRuntime, type Projections } from './projections/projections';
import { foldEvents, type FoldQuery, type FoldReducer } from './projections/fold';
import { checkHealth, type EventSourcingHealth, type HealthOptions } from './observability/health';
import { instrument, instrumentationOf, secondsSince } from './observability/instrumentation';
import { observeGauges } from './observability/telemetry-gauges';
import { ConcurrencyError } from './errors/concurrency-error';
import type { AggregateDefinition } from './aggregates/aggregate-definition';
import type { EventClass } from './projections/projection';
import type { Command } from './commands/command';
import { EventSourcingSubscriber } from './subscriber/event-sourcing-subscriber';

/** Something to run after every outermost COMMIT that wrote events. */
export type CommitListener = (events: AggregateEvent[]) => void;

/** An aggregate entity class. */
export type AggregateClass<A> = abstract new (...args: any[]) => A;

const attached = new Map<DataSource, EventSourcing>();
/** DataSources an attach is under way for: a second attach started meanwhile is refused too. */
const attaching = new Set<DataSource>();


/** What commands and test helpers need of an instance, kept off its public surface. */
export interface EventSourcingInternals {
  readonly dataSource: DataSource;
  readonly registry: EventSourcingRegistry;
  /** The queue, workers and relays of async reactors in this process. */
  readonly reactors: ReactorRuntime;
  /** The ambient transaction's manager (option `currentManager`), if the caller is in one. */
  currentManager(): EntityManager | undefined;
  /** Builds a command instance for one call (option `commandFactory`). */
  newCommand(command: new (...args: any[]) => Command<any>): Promise<Command<any>>;
  /**
   * Writes consecutive events of one aggregate instance in one statement, in `manager`'s
   * transaction; `false` (nothing written) when they must be appended one at a time.
   */
  appendMany(events: readonly AggregateEvent[], manager: EntityManager): Promise<boolean>;
}
const internals = new WeakMap<EventSourcing, EventSourcingInternals>();

/**
 * The instance attached to the DataSource of `manager`, or, without a manager, the only attached
 * instance of this process.
 *
 * @throws EventSourcingConfigError when there is none, or several and no manager says which.
 */
export function attachedTo(manager?: EntityManager): { es: EventSourcing; internals: EventSourcingInternals } {
  let es: EventSourcing | undefined;
  if (manager) {
    es = attached.get(manager.connection);
    if (!es) throw new EventSourcingConfigError('no EventSourcing is attached to the DataSource of the given manager: call EventSourcing.attach first');
  } else {
    if (attached.size !== 1) {
      throw new EventSourcingConfigError(
        attached.size === 0
          ? 'no EventSourcing is attached: call EventSourcing.attach(dataSource) first'
          : `${attached.size} DataSources have EventSourcing attached: pass { manager } to say which one`,
      );
    }
    es = [...attached.values()][0];
  }
  return { es, internals: internals.get(es)! };
}

/**
 * Event sourcing for one TypeORM DataSource: registers the write path and the reactors, and
 * offers history, replay and verification. Create it once at start-up, after
 * `dataSource.initialize()`.
 *
 * @example
 * ```ts
 * const dataSource = new DataSource({ type: 'postgres', url, entities: [Subscription, SubscriptionEvent, SubscriptionActivated] });
 * await dataSource.initialize();
 * const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: { host, port } } });
 * await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123' }));
 * console.log(await es.history(Subscription, subscription.id));
 * await es.close();
 * ```
 */
export class EventSourcing {
  readonly #dataSource: DataSource;
  readonly #registry: EventSourcingRegistry;
  readonly #subscriber: EventSourcingSubscriber;
  readonly #reactors: ReactorRuntime;
  readonly #onError: (error: unknown) => void;
  readonly #listeners = new Set<CommitListener>();
  readonly #fastPath: FastPath | undefined;
  readonly #projections: ProjectionRuntime;
  #closed = false;
  #stopGauges: () => void = () => undefined;

  /** The database objects the library needs besides TypeORM's tables, for migrations. */
  readonly schema: EventSourcingSchema;
  readonly #currentManagerOption: (() => EntityManager | undefined) | undefined;

  private constructor(
    dataSource: DataSource,
    registry: EventSourcingRegistry,
    reactors: ReactorRuntime,
    onError: (error: unknown) => void,
    onDirectWrite: (warning: DirectWriteError) => void,
    options: EventSourcingOptions,
  ) {
    this.#dataSource = dataSource;
    this.#registry = registry;
    this.#reactors = reactors;
    this.#onError = onError;
    this.#currentManagerOption = options.currentManager;
    const log = new TransactionLog();
    const committed = (written: WrittenEvent[]) => this.#committed(written);
    this.#subscriber = new EventSourcingSubscriber(registry, log, committed, reactors.reactions, onDirectWrite, options.fastPath !== false);
    if (options.fastPath !== false) {
      this.#fastPath = new FastPath(dataSource, reactors.reactions, log, this.#subscriber, committed, { statements: options.statements ?? 'named' });
    }
    this.schema = eventSourcingSchema(dataSource, registry.definitions);
    this.#projections = new ProjectionRuntime(dataSource, registry, onError);
    // Projection runners in every process hear of this process's commits (debounced NOTIFY).
    this.afterCommit(() => this.#projections.committed());
    internals.set(this, {
      dataSource,
      registry,
      reactors,
      currentManager: () => this.#currentManager(),
      newCommand: async (command) => {
        const instance: unknown = options.commandFactory ? await options.commandFactory(command) : new command();
        if (!(instance instanceof command)) {
          const built = (instance as { constructor?: { name?: string } } | null)?.constructor?.name ?? String(instance);
          throw new EventSourcingConfigError(`the commandFactory option returned ${built} for ${command.name}: it must build an instance of that class`);
        }
        return instance;
      },
      appendMany: (events, manager) => this.#appendMany(events, manager),
    });
    if (options.instrumentation) this.#stopGauges = observeGauges(options.instrumentation, dataSource, this.#projections.projections);
  }

  /**
   * Resolves the decorated classes against an initialized PostgreSQL DataSource, checks that they
   * fit together, and registers the write path and the reactors. Call once per DataSource, after
   * `initialize()`.
   *
   * @throws EventSourcingConfigError when the DataSource is not ready or the classes do not fit.
   */
  static async attach(dataSource: DataSource, options: EventSourcingOptions = {}): Promise<EventSourcing> {
    if (!dataSource.isInitialized) {
      throw new EventSourcingConfigError('EventSourcing.attach needs an initialized DataSource: call dataSource.initialize() first');
    }
    if (dataSource.options.type !== 'postgres') {
      throw new EventSourcingConfigError(`EventSourcing supports PostgreSQL DataSources, not '${dataSource.options.type}'`);
    }
    if (attached.has(dataSource) || attaching.has(dataSource)) {
      throw new EventSourcingConfigError('EventSourcing is already attached to this DataSource: close() the other instance first');
    }
    if (options.fastPath !== undefined && typeof options.fastPath !== 'boolean') {
      throw new EventSourcingConfigError(`the fastPath option must be true or false, not ${String(options.fastPath)}`);
    }
    if (options.commandFactory !== undefined && typeof options.commandFactory !== 'function') {
      throw new EventSourcingConfigError(`the commandFactory option must be a function building a command instance, not ${typeof options.commandFactory}`);
    }
    if (options.currentManager !== undefined && typeof options.currentManager !== 'function') {
      throw new EventSourcingConfigError(`the currentManager option must be a function returning an EntityManager or undefined, not ${typeof options.currentManager}`);
    }
    if (options.statements !== undefined && options.statements !== 'named' && options.statements !== 'unnamed') {
      throw new EventSourcingConfigError(`the statements option must be 'named' or 'unnamed', not ${String(options.statements)}`);
    }
    attaching.add(dataSource);
    try {
      return await EventSourcing.#attach(dataSource, options);
    } finally {
      attaching.delete(dataSource);
    }
  }

  static async #attach(dataSource: DataSource, options: EventSourcingOptions): Promise<EventSourcing> {
    const instrumentation = options.instrumentation;
    if (instrumentation !== undefined && (instrumentation === null || typeof instrumentation.span !== 'function')) {
      throw new EventSourcingConfigError('the instrumentation option must be made by openTelemetry() from typeorm-event-sourcing/opentelemetry');
    }
    const registry = new EventSourcingRegistry(dataSource);
    if (options.createSchema ?? Boolean(dataSource.options.synchronize)) await eventSourcingSchema(dataSource, registry.definitions).create();
    const onError =
      options.onError ?? ((error: unknown) => dataSource.logger.log('warn', `typeorm-event-sourcing: ${(error as Error)?.stack ?? String(error)}`));
    instrument(dataSource, instrumentation);
    let reactors: ReactorRuntime;
    try {
      reactors = await ReactorRuntime.create(dataSource, registry, options.dispatcher ?? new Dispatcher(), options.queue, onError);
    } catch (error) {
      instrument(dataSource, undefined);
      throw error;
    }
    // A warning about the application's own code, so shown even where the DataSource logs nothing.
    const onDirectWrite = options.onError ?? ((warning: DirectWriteError) => process.emitWarning(warning.message, { type: 'DirectWriteWarning', code: warning.code }));
    const es = new EventSourcing(dataSource, registry, reactors, onError, onDirectWrite, options);
    dataSource.subscribers.push(es.#subscriber);
    attached.set(dataSource, es);
    markAttached(es.#eventsClasses, true);
    return es;
  }

  /**
   * Writes an event and its aggregate together and returns the saved event: in one statement
   * when the aggregate instance's stored state is known (the fast path, see
   * {@link EventSourcingOptions.fastPath}), otherwise in one transaction under the row lock, as
   * `manager.save(event)` does. With `options.manager`, in that manager's transaction.
   *
   * @throws ConcurrencyError when the aggregate is not at `expectedVersion`, or on a serialization failure or deadlock.
   * @throws EventApplyError when `apply` throws; nothing is written.
   * @throws ConnectionLostError when the connection broke during the write; the aggregate instance and the event are as they were.
   * @throws UsageError for an `expectedVersion` that is not a non-negative integer, or an event not made by `build`.
   * @throws AggregateRequiredError for an event type that does not create its aggregate, built without one.
   * @throws EventAlreadyWrittenError when this event instance is being written already.
   */
  async append<E extends AggregateEvent>(event: E, options: AppendOptions = {}): Promise<E> {
    this.#assertOpen();
    assertObjectArgument('es.append', 'options', options);
    if (!(event instanceof Object) || !this.#dataSource.hasMetadata(event.constructor)) {
      throw new EventSourcingConfigError(
        `${(event as object | null)?.constructor?.name ?? String(event)} is not an entity of this DataSource: list every event class in the DataSource's entities`,
      );
    }
    const definition = this.#registry.forEventsMetadata(this.#dataSource.getMetadata(event.constructor));
    if (!definition) throw new EventSourcingConfigError(`${event.constructor.name} is not an event class of this DataSource`);
    const state = pendingWriteOf(event).state;
    if (state === 'in flight') throw new EventAlreadyWrittenError(event.type, state);
    if (event.id !== undefined && event.id !== null) {
      throw new ImmutableEventError(definition.eventsMetadata.tableName, 'update', event.id);
    }
    assertExpectedVersion(`es.append(${event.type})`, options.expectedVersion);
    if (options.expectedVersion !== undefined) pendingWriteOf(event).expectedVersion = options.expectedVersion;
    const manager = options.manager ?? this.#currentManager() ?? this.#dataSource.manager;
    const ownTransaction = !manager.queryRunner?.isTransactionActive;
    const instrumentation = instrumentationOf(this.#dataSource);
    return instrumentation.span('es.append', { 'typeorm_es.aggregate': definition.name, 'typeorm_es.event.type': event.type }, async (span) => {
      const started = performance.now();
      let path = 'locked';
      try {
        if (this.#fastPath && (await this.#fastPath.tryAppend(event, definition, manager))) path = 'fast';
        else await manager.save(event);
        span.setAttributes({ 'typeorm_es.aggregate.id': String(event.aggregateId), 'typeorm_es.event.id': event.id, 'typeorm_es.event.version': event.version, 'typeorm_es.path': path });
        instrumentation.record('typeorm_es.append.duration', secondsSince(started), { 'typeorm_es.aggregate': definition.name, 'typeorm_es.path': path, 'typeorm_es.outcome': 'written' });
        return event;
      } catch (error) {
        const failure = this.#appendError(error, event, definition, ownTransaction);
        const outcome = failure instanceof ConcurrencyError ? 'conflict' : 'error';
        if (outcome === 'conflict') instrumentation.count('typeorm_es.concurrency.conflicts', 1, { 'typeorm_es.aggregate': definition.name });
        span.setAttributes({ 'typeorm_es.path': path });
        instrumentation.record('typeorm_es.append.duration', secondsSince(started), { 'typeorm_es.aggregate': definition.name, 'typeorm_es.path': path, 'typeorm_es.outcome': outcome });
        throw failure;
      }
    });
  }

  /** The error es.append raises for what its write threw. */
  #appendError(error: unknown, event: AggregateEvent, definition: AggregateDefinition, ownTransaction: boolean): unknown {
    const pending = pendingWriteOf(event);
    const aggregateId = event.aggregateId ?? (pending.aggregate ? definition.idOf(pending.aggregate) : undefined);
    if (isConnectionLoss(error) && !(error instanceof ConnectionLostError)) {
      // The save's own transaction got past its statements to COMMIT: the loss met the COMMIT.
      return new ConnectionLostError(definition.name, aggregateId, error, Boolean(pending.awaitingCommit) && ownTransaction);
    }
    return asConcurrencyError(error, definition, aggregateId);
  }

  /**
   * The aggregate's events in version order: its audit log.
   *
   * @throws UsageError for an id of the wrong type for the primary column.
   * @throws AggregateNotFoundError for an aggregate that does not exist.
   */
  async history<A extends object>(aggregate: AggregateClass<A>, id: unknown, options: { manager?: EntityManager } = {}): Promise<AggregateEvent<A>[]> {
    this.#assertOpen();
    return loadHistory(options.manager ?? this.#dataSource.manager, this.#registry.aggregate(aggregate), id);
  }

  /**
   * The time machine: an unsaved instance replayed from a fresh entity, after `version`, or after
   * the longest run of versions whose `createdAt <= at`. `null` before the aggregate's first event.
   *
   * @throws VersionOutOfRangeError for a version the aggregate has not reached.
   * @throws AggregateNotFoundError for an aggregate that does not exist.
   * @throws UsageError for an id of the wrong type, or options that are not exactly one of a
   * version from 1 to 2^31 - 1 and a valid Date.
   */
  async stateAt<A extends object>(aggregate: AggregateClass<A>, id: unknown, options: StateAtOptions): Promise<A | null> {
    this.#assertOpen();
    return (await stateAt(this.#dataSource.manager, this.#registry.aggregate(aggregate), id, options)) as A | null;
  }

  /**
   * Replays the aggregate's events into its row, under the row lock, and returns the row.
   *
   * @throws UsageError for an id of the wrong type; AggregateNotFoundError for a missing aggregate.
   */
  async rebuild<A extends object>(aggregate: AggregateClass<A>, id: unknown): Promise<A> {
    this.#assertOpen();
    return (await rebuildOne(this.#dataSource.manager, this.#registry.aggregate(aggregate), id)) as A;
  }

  /** Rebuilds every aggregate of a type in short transactions with bounded memory. */
  async rebuildAll<A extends object>(aggregate: AggregateClass<A>, options: RebuildAllOptions = {}): Promise<RebuildProgress> {
    this.#assertOpen();
    assertObjectArgument('es.rebuildAll', 'options', options);
    return rebuildAll(this.#dataSource.manager, this.#registry.aggregate(aggregate), options);
  }

  /**
   * Moves an existing CRUD table onto events: writes the declared baseline
   * (`@Aggregate({ baseline })`) of every row that has no events yet, a batch per short
   * transaction. Sourced columns and the update date stay as they were; the version becomes 1.
   * Resumable and idempotent: a second run finds nothing left and writes nothing.
   *
   * @throws MissingBaselineError when rows have no events and the aggregate declares no baseline.
   * @throws BaselineMismatchError when a baseline does not give back its row when replayed (that
   * batch is rolled back; earlier batches stay).
   */
  async baseline<A extends object>(aggregate: AggregateClass<A>, options: BaselineOptions = {}): Promise<BaselineResult> {
    this.#assertOpen();
    return baselineAll(this.#dataSource.manager, this.#registry.aggregate(aggregate), this.#reactors.reactions, options);
  }

  /**
   * The rows whose sourced columns or version differ from the replay of their events
   * (`reason: 'drift'`), and the rows with no events yet (`reason: 'noEvents'`).
   *
   * @throws UsageError for an `id` option of the wrong type; AggregateNotFoundError for a missing one.
   */
  async verify<A extends object>(aggregate: AggregateClass<A>, options: VerifyOptions = {}): Promise<VerifyMismatch[]> {
    this.#assertOpen();
    return verify(this.#dataSource.manager, this.#registry.aggregate(aggregate), options);
  }

  /**
   * A one-off report over history, without a table: the events `query` selects (event classes,
   * optionally one aggregate, a time or position range) pass through `reducer` in order, a batch
   * at a time, all from one snapshot taken when the call starts. See docs/projections.md.
   *
   * @example
   * ```ts
   * const activationsByMonth = await es.fold(
   *   { events: SubscriptionActivated, from: new Date('2026-01-01') },
   *   (counts, event) => {
   *     const month = event.createdAt.toISOString().slice(0, 7);
   *     return { ...counts, [month]: (counts[month] ?? 0) + 1 };
   *   },
   *   {} as Record<string, number>,
   * );
   * ```
   * @throws UsageError for a malformed query; EventSourcingConfigError for a class that is not an
   * event class of this DataSource.
   */
  async fold<C extends EventClass, T>(query: FoldQuery<C>, reducer: FoldReducer<T, InstanceType<C>>, initial: T): Promise<T> {
    this.#assertOpen();
    return foldEvents(this.#dataSource, this.#registry, query, reducer, initial);
  }

  /**
   * Runs `listener` after every outermost COMMIT that wrote events, with those events in write
   * order (events of rolled-back savepoints left out). Returns a function that unsubscribes.
   * A throwing listener is logged through the DataSource's logger and never fails the save.
   */
  afterCommit(listener: CommitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Runs `fn` so that every event written inside it (also by the trigger reactors of those events)
   * carries `metadata`, e.g. the user of the current request. Metadata given to `build` wins.
   * Events written later by async reactors carry causation and correlation ids instead.
   *
   * @example
   * ```ts
   * await es.withMetadata({ userId: request.user.id }, () => ActivateSubscription.call({ subscription, stripeKey }));
   * ```
   */
  withMetadata<T>(metadata: EventMetadata, fn: () => T): T {
    return withMetadata(metadata, fn);
  }

  /**
   * A BullMQ Worker running the async reactors, with an outbox relay beside it (unless
   * `relay: false`). Run as many as you like, in as many processes and machines as you like,
   * on the same queue. `es.close()` closes it; so does `worker.close()`. Either lets running jobs
   * finish, and neither waits longer than `queue.closeTimeout` per step: a Redis that is down or
   * does not answer gets its connections dropped instead.
   */
  worker(options: ReactorWorkerOptions = {}): Worker<ReactorJobData> {
    this.#assertOpen();
    return this.#reactors.worker(options);
  }

  /**
   * An outbox relay on its own (`es.worker()` starts one already): delivers jobs whose
   * after-commit hand-over did not happen. Many relays never hand over the same row twice.
   */
  relay(options: RelayOptions = {}): OutboxRelay {
    this.#assertOpen();
    return this.#reactors.relay(options);
  }

  /**
   * Read models built from events: `catchUp`, `run`, `rebuild` and `status` of {@link Projection}s.
   * See docs/projections.md.
   */
  get projections(): Projections {
    return this.#projections.projections;
  }

  /** The DataSource this instance is attached to. */
  get dataSource(): DataSource {
    return this.#dataSource;
  }

  /** The BullMQ queue of the async reactors, for dashboards such as bull-board. */
  get queue() {
    return this.#reactors.queue.queue;
  }

  /**
   * Async reactor work not finished yet: outbox rows not in the queue, hand-overs in progress, and
   * jobs waiting, active or waiting for a retry. Failed jobs (attempts exhausted) do not count.
   * With `keepOutboxUntil: 'completed'`, a job Redis lost counts again once the relay has added
   * it back (after `relay.recheckAfter`).
   */
  async pendingReactorJobs(): Promise<number> {
    this.#assertOpen();
    return this.#reactors.pendingJobs();
  }

  /**
   * How the parts the library depends on are doing, for a health endpoint: the database, the
   * reactor queue, the outbox backlog, failed reactor jobs and projections, each with a status
   * (`ok`, `degraded`, `down`) and the figures behind it. Never throws for an unreachable part,
   * and answers within about `timeout`. See docs/observability.md.
   *
   * @example
   * ```ts
   * const health = await es.health({ outboxMaxAgeMs: 60_000 });
   * response.statusCode = health.status === 'down' ? 503 : 200;
   * ```
   * @throws UsageError for a threshold that is not a non-negative number.
   */
  async health(options: HealthOptions = {}): Promise<EventSourcingHealth> {
    this.#assertOpen();
    return checkHealth({ dataSource: this.#dataSource, queue: this.#reactors.configuredQueue?.queue, projections: this.projections }, options);
  }

  /**
   * Stops the projection runners (each finishes its batch in progress and lets its connection
   * go), then closes the workers (running jobs finish first), relays and queue this instance
   * started, and unregisters the write path. Idempotent; every step runs even if one fails, and
   * none of the queue's waits longer than `queue.closeTimeout` (5000 ms) before dropping its
   * connections.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#projections.close();
    const index = this.#dataSource.subscribers.indexOf(this.#subscriber);
    if (index >= 0) this.#dataSource.subscribers.splice(index, 1);
    attached.delete(this.#dataSource);
    markAttached(this.#eventsClasses, false);
    this.#listeners.clear();
    this.#stopGauges();
    await this.#reactors.close();
    instrument(this.#dataSource, undefined);
  }

  async #appendMany(events: readonly AggregateEvent[], manager: EntityManager): Promise<boolean> {
    this.#assertOpen();
    const first = events[0];
    if (!this.#fastPath || !first || !this.#dataSource.hasMetadata(first.constructor)) return false;
    const definition = this.#registry.forEventsMetadata(this.#dataSource.getMetadata(first.constructor));
    if (!definition) return false;
    try {
      return await this.#fastPath.tryAppendMany(events, definition, manager);
    } catch (error) {
      const aggregate = pendingWriteOf(first).aggregate;
      const aggregateId = aggregate ? definition.idOf(aggregate) : undefined;
      if (isConnectionLoss(error) && !(error instanceof ConnectionLostError)) throw new ConnectionLostError(definition.name, aggregateId, error);
      throw asConcurrencyError(error, definition, aggregateId);
    }
  }

  #committed(written: WrittenEvent[]): void {
    const instrumentation = instrumentationOf(this.#dataSource);
    for (const { event, definition } of written) {
      instrumentation.count('typeorm_es.events.appended', 1, { 'typeorm_es.event.type': event.type, 'typeorm_es.aggregate': definition.name });
    }
    this.#reactors.committed(written);
    const events = written.map((entry) => entry.event);
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        this.#onError(error);
      }
    }
  }

  get #eventsClasses(): Function[] {
    return this.#registry.definitions.map((definition) => definition.eventsMetadata.target as Function);
  }

  /** The manager `currentManager` names, checked to be one of this DataSource's. */
  #currentManager(): EntityManager | undefined {
    const manager = this.#currentManagerOption?.();
    if (manager === undefined || manager === null) return undefined;
    if (manager.connection !== this.#dataSource) {
      throw new EventSourcingConfigError('the currentManager option returned an EntityManager of another DataSource than the one EventSourcing is attached to');
    }
    return manager;
  }

  #assertOpen(): void {
    if (this.#closed) throw new EventSourcingConfigError('this EventSourcing instance is closed');
  }
}
