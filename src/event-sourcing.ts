import type { DataSource, EntityManager } from 'typeorm';
import { EventSourcingConfigError } from './errors/event-sourcing-config-error';
import { ImmutableEventError } from './errors/immutable-event-error';
import type { AggregateEvent } from './events/aggregate-event';
import { pendingWriteOf } from './events/pending-write';
import { TransactionLog, type WrittenEvent } from './events/transaction-log';
import { asConcurrencyError } from './events/write-path';
import { EventSourcingRegistry } from './metadata/event-sourcing-registry';
import { loadHistory } from './replay/history';
import { rebuildAll, rebuildOne, type RebuildAllOptions, type RebuildProgress } from './replay/rebuild';
import { stateAt, type StateAtOptions } from './replay/state-at';
import { verify, type VerifyMismatch, type VerifyOptions } from './replay/verify';
import { dropSchemaStatements, runStatements, schemaStatements } from './schema/event-sourcing-schema';
import { EventSourcingSubscriber } from './subscriber/event-sourcing-subscriber';

/** Options of {@link EventSourcing.attach}. */
export interface EventSourcingOptions {
  /**
   * Create the database objects the library needs besides TypeORM's tables (position sequence,
   * append-only triggers) while attaching. Production schemas get them from a migration instead.
   * @defaultValue the DataSource's `synchronize` option
   */
  createSchema?: boolean;
}

/** Options of {@link EventSourcing.append}. */
export interface AppendOptions {
  /** The version the aggregate must be at before this event; see `ConcurrencyError`. */
  expectedVersion?: number;
  /** Write in this manager's transaction instead of a transaction of its own. */
  manager?: EntityManager;
}

/** Something to run after every outermost COMMIT that wrote events. */
export type CommitListener = (events: AggregateEvent[]) => void;

type AggregateClass<A> = abstract new (...args: any[]) => A;

const attached = new WeakMap<DataSource, EventSourcing>();

/**
 * Event sourcing for one TypeORM DataSource: registers the write path, and offers history,
 * replay and verification. Create it once at start-up, after `dataSource.initialize()`.
 *
 * @example
 * ```ts
 * const dataSource = new DataSource({ type: 'postgres', url, entities: [Subscription, SubscriptionEvent, SubscriptionActivated] });
 * await dataSource.initialize();
 * const es = await EventSourcing.attach(dataSource);
 * await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123' }));
 * console.log(await es.history(Subscription, subscription.id));
 * await es.close();
 * ```
 */
export class EventSourcing {
  readonly #dataSource: DataSource;
  readonly #registry: EventSourcingRegistry;
  readonly #subscriber: EventSourcingSubscriber;
  readonly #listeners = new Set<CommitListener>();
  #closed = false;

  /** The database objects the library needs besides TypeORM's tables, for migrations. */
  readonly schema: {
    /** The SQL statements, idempotent, in order. */
    statements(): string[];
    /** The statements as one script, for a migration file or psql. */
    sql(): string;
    /** Runs the statements in one transaction. */
    create(): Promise<void>;
    /** Removes what `create` made (triggers, function, sequence); tables are TypeORM's. */
    drop(): Promise<void>;
  };

  private constructor(dataSource: DataSource, registry: EventSourcingRegistry) {
    this.#dataSource = dataSource;
    this.#registry = registry;
    this.#subscriber = new EventSourcingSubscriber(registry, new TransactionLog(), (written) => this.#committed(written));
    const driver = dataSource.driver;
    const statements = () => schemaStatements(driver, registry.definitions);
    const run = async (list: string[]) => {
      const queryRunner = dataSource.createQueryRunner();
      try {
        await runStatements(queryRunner, list);
      } finally {
        await queryRunner.release();
      }
    };
    this.schema = {
      statements,
      sql: () => statements().map((statement) => `${statement};`).join('\n\n'),
      create: () => run(statements()),
      drop: () => run(dropSchemaStatements(driver, registry.definitions)),
    };
  }

  /**
   * Resolves the decorated classes against an initialized PostgreSQL DataSource, checks that they
   * fit together, and registers the write path. Call once per DataSource, after `initialize()`.
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
    if (attached.has(dataSource)) {
      throw new EventSourcingConfigError('EventSourcing is already attached to this DataSource: close() the other instance first');
    }
    const es = new EventSourcing(dataSource, new EventSourcingRegistry(dataSource));
    if (options.createSchema ?? Boolean(dataSource.options.synchronize)) await es.schema.create();
    dataSource.subscribers.push(es.#subscriber);
    attached.set(dataSource, es);
    return es;
  }

  /**
   * Writes an event and its aggregate in one transaction (or in `options.manager`'s) and returns
   * the saved event. The same as `manager.save(event)`, plus an expected version.
   *
   * @throws ConcurrencyError when the aggregate is not at `expectedVersion`, or on a serialization failure or deadlock.
   * @throws EventApplyError when `apply` throws; nothing is written.
   */
  async append<E extends AggregateEvent>(event: E, options: AppendOptions = {}): Promise<E> {
    this.#assertOpen();
    const definition = this.#registry.forEventsMetadata(this.#dataSource.getMetadata(event.constructor));
    if (!definition) throw new EventSourcingConfigError(`${event.constructor.name} is not an event class of this DataSource`);
    if (event.id !== undefined && event.id !== null) {
      throw new ImmutableEventError(definition.eventsMetadata.tableName, 'update', event.id);
    }
    if (options.expectedVersion !== undefined) pendingWriteOf(event).expectedVersion = options.expectedVersion;
    const manager = options.manager ?? this.#dataSource.manager;
    try {
      return await manager.save(event);
    } catch (error) {
      throw asConcurrencyError(error, definition, event.aggregateId ?? pendingWriteOf(event).aggregate);
    }
  }

  /** The aggregate's events in version order: its audit log. */
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
   */
  async stateAt<A extends object>(aggregate: AggregateClass<A>, id: unknown, options: StateAtOptions): Promise<A | null> {
    this.#assertOpen();
    return (await stateAt(this.#dataSource.manager, this.#registry.aggregate(aggregate), id, options)) as A | null;
  }

  /** Replays the aggregate's events into its row, under the row lock, and returns the row. */
  async rebuild<A extends object>(aggregate: AggregateClass<A>, id: unknown): Promise<A> {
    this.#assertOpen();
    return (await rebuildOne(this.#dataSource.manager, this.#registry.aggregate(aggregate), id)) as A;
  }

  /** Rebuilds every aggregate of a type in short transactions with bounded memory. */
  async rebuildAll<A extends object>(aggregate: AggregateClass<A>, options: RebuildAllOptions = {}): Promise<RebuildProgress> {
    this.#assertOpen();
    return rebuildAll(this.#dataSource.manager, this.#registry.aggregate(aggregate), options);
  }

  /** The rows whose sourced columns or version differ from the replay of their events. */
  async verify<A extends object>(aggregate: AggregateClass<A>, options: VerifyOptions = {}): Promise<VerifyMismatch[]> {
    this.#assertOpen();
    return verify(this.#dataSource.manager, this.#registry.aggregate(aggregate), options);
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

  /** Unregisters the write path. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const index = this.#dataSource.subscribers.indexOf(this.#subscriber);
    if (index >= 0) this.#dataSource.subscribers.splice(index, 1);
    attached.delete(this.#dataSource);
    this.#listeners.clear();
  }

  #committed(written: WrittenEvent[]): void {
    const events = written.map((entry) => entry.event);
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (error) {
        this.#dataSource.logger.log('warn', `typeorm-event-sourcing: after-commit listener failed: ${(error as Error)?.stack ?? error}`);
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new EventSourcingConfigError('this EventSourcing instance is closed');
  }
}
