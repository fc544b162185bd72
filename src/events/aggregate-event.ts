import { Column, getMetadataArgsStorage } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { assertObjectArgument } from '../errors/usage-error';
import { InvalidEventDataError } from '../errors/invalid-event-data-error';
import { RetiredEventTypeError } from '../errors/retired-event-type-error';
import { UnknownEventAttributeError } from '../errors/unknown-event-attribute-error';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { collectData, hydrateData } from './event-data';
import { upcastStoredData } from './upcasting';
import { isAttached } from './attached-event-classes';
import { assertExpectedVersion } from './expected-version';
import { pendingWriteOf } from './pending-write';

/** Free-form context stored with an event (who, why, request ids), a JSON object. */
export type EventMetadata = Record<string, unknown>;

/** Options accepted by `Event.build(attributes, options)`. */
export interface BuildOptions {
  /**
   * The version the aggregate must be at before this event; a different version raises
   * `ConcurrencyError` and nothing is written. Use 0 for "must not have events yet".
   */
  expectedVersion?: number;
}

/** The property names of an event that are data (not methods, not the base class's). */
export type DataKeys<E> = {
  [K in keyof E]-?: K extends keyof AggregateEvent<any, any> ? never : E[K] extends (...args: any[]) => any ? never : K;
}[keyof E];

/** The aggregate an event class belongs to. */
export type AggregateOf<E> = E extends AggregateEvent<infer A, any> ? A : never;

/**
 * The key `build` takes the aggregate under: the events class's second type parameter
 * (`AggregateEvent<Subscription, 'subscription'>`), or `aggregate` when it has none.
 */
export type AggregateKeyOf<E> = E extends AggregateEvent<any, infer K> ? (string extends K ? 'aggregate' : K) : never;

/**
 * What `Event.build` accepts: the event's `@Data` attributes (required unless declared optional
 * in TypeScript), optional `metadata`, and the aggregate under its key ({@link AggregateKeyOf}).
 * Leave the aggregate out to create a new one. Unknown keys are compile errors here, and raise
 * `UnknownEventAttributeError` at run time for callers TypeScript does not check.
 */
export type EventAttributes<E> = Pick<E, DataKeys<E>> & {
  /** Free-form context stored with the event. */
  metadata?: EventMetadata;
} & { [P in AggregateKeyOf<E>]?: AggregateOf<E> | null };


/**
 * Base class of every event. Each aggregate has one abstract events class (one table),
 * decorated with `@EventsOf`; each concrete event extends it, has a stable `@EventType` name,
 * `@Data` attributes and an `apply` calculator.
 *
 * @typeParam A - the aggregate entity.
 * @typeParam K - the key `build` takes the aggregate under: the aggregate's camel-cased class
 *   name (`'subscription'`). Left out, the key is `aggregate`. Either way a misspelt key or an
 *   aggregate of another type is a compile error.
 *
 * @example
 * ```ts
 * @EventsOf(() => Subscription)
 * export abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}
 *
 * @EventType('Subscription.Activated')
 * export class SubscriptionActivated extends SubscriptionEvent {
 *   @Data() stripeKey!: string;
 *   apply(subscription: Subscription): Subscription {
 *     subscription.stripeKey = this.stripeKey;
 *     subscription.status = 'active';
 *     subscription.activatedAt = this.createdAt;
 *     return subscription;
 *   }
 * }
 * ```
 */
export abstract class AggregateEvent<A extends object = any, K extends string = string> {
  /**
   * Type only: the key `build` takes the aggregate under. At run time `build` accepts the
   * camel-cased class name of the aggregate or `aggregate`, so `K` must be one of those.
   */
  // A string key, not a unique symbol: declarations that export event classes made by a
  // function must be able to name it.
  declare readonly '~aggregateKey'?: K;
  /** The row id, unique within the events table. */
  declare id: number;
  /** The aggregate's primary key (the `<aggregate>_id` column). */
  declare aggregateId: any;
  /** The aggregate, when loaded as a relation; writes use the instance given to `build`. */
  declare aggregate?: A;
  /** The aggregate's version after this event: 1 for its first event, contiguous after that. */
  declare version: number;
  /**
   * The version of the data shape the row was stored with (`@EventType({ version })` when it was
   * written). A loaded event keeps the stored value; its `@Data` attributes are upcast to the
   * class's current version.
   */
  declare schemaVersion: number;
  /** Free-form context, stored as jsonb. */
  declare metadata: EventMetadata;
  /** When the event was written, with millisecond precision; `apply` and every replay see this value. */
  declare createdAt: Date;
  /** Global order across every events table of the schema (one shared sequence); gaps are possible. */
  declare position: number;
  /** The id of the transaction that wrote the event. */
  declare txId: number;

  /** The stored type name given by `@EventType`. */
  get type(): string {
    return getMetadataStorage().eventTypeOf(this.constructor)?.name ?? this.constructor.name;
  }

  /** Ignored: the class decides the type. */
  set type(_stored: string) {
    // The class decides the type. TypeORM 1.1 never assigns the discriminator on load, but an
    // accessor without a setter would make such an assignment throw.
  }

  /** The `@Data` attributes as the jsonb object that is stored. */
  get data(): Record<string, unknown> {
    return collectData(this, getMetadataStorage().dataOf(this.constructor));
  }

  /**
   * Hydrates the `@Data` properties from stored jsonb (declared properties only), upcast first
   * from the row's `schemaVersion` to the class's version (TypeORM assigns `schemaVersion` before
   * `data`).
   */
  set data(stored: Record<string, unknown>) {
    const storage = getMetadataStorage();
    const data = upcastStoredData(storage.eventTypeOf(this.constructor), this.constructor.name, stored, this.schemaVersion, this.id);
    hydrateData(this.type, this, storage.dataOf(this.constructor), data);
  }

  /**
   * The calculator: changes the aggregate to reflect this event. Called when the event is
   * written, with an entity holding the row as stored (a copy of what was loaded or last written,
   * or the row locked for the write; never the caller's instance), and with a fresh entity during
   * every replay, so it must depend only on the aggregate's sourced columns, the event's data and
   * `createdAt`.
   */
  abstract apply(aggregate: A): A | void;

  /**
   * Builds an unsaved event. Save it with `es.append(event)` or `manager.save(event)`: `apply`
   * runs, and event and aggregate are written together, in one statement or one transaction.
   *
   * @example
   * ```ts
   * const event = await dataSource.manager.save(
   *   SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }),
   * );
   * ```
   */
  static build<E extends AggregateEvent<any, any>>(
    this: new () => E,
    attributes: EventAttributes<E>,
    options: BuildOptions = {},
  ): E {
    const event = new this();
    const storage = getMetadataStorage();
    const eventsOf = storage.eventsOfFor(this);
    if (!eventsOf) {
      throw new EventSourcingConfigError(`${this.name} does not extend a class decorated with @EventsOf`);
    }
    const aggregateClass = eventsOf.aggregate();
    const aggregateKey = aggregateKeyOf(aggregateClass);
    const eventType = storage.eventTypeOf(this);
    if (eventType?.retired) throw new RetiredEventTypeError(eventType.name, this.name);
    const records = storage.dataOf(this);
    const dataNames = new Set(records.map((record) => record.propertyName));
    const pending = pendingWriteOf(event);
    const target = event as unknown as Record<string, unknown>;
    if (attributes === null || typeof attributes !== 'object') {
      throw new InvalidEventDataError(event.type, 'attributes', 'must be an object');
    }
    assertObjectArgument(event.type, 'options', options);
    for (const key of Object.keys(attributes)) {
      const value = (attributes as Record<string, unknown>)[key];
      if (key === 'metadata') {
        target.metadata = value;
      } else if (key === aggregateKey || key === 'aggregate') {
        if (value === undefined || value === null) continue;
        if (!(value instanceof aggregateClass)) {
          throw new InvalidEventDataError(event.type, key, `must be a ${aggregateClass.name} instance`);
        }
        pending.aggregate = value;
      } else if (dataNames.has(key)) {
        target[key] = value;
      } else {
        throw new UnknownEventAttributeError(event.type, key, [aggregateKey, ...dataNames, 'metadata']);
      }
    }
    const missing = records.filter((record) => !record.optional && target[record.propertyName] === undefined).map((record) => record.propertyName);
    if (missing.length > 0) {
      throw new InvalidEventDataError(
        event.type,
        missing.join(', '),
        `${missing.length === 1 ? 'is' : 'are'} required (declare @Data({ optional: true }) for an attribute that may be left out)`,
      );
    }
    assertExpectedVersion(event.type, options.expectedVersion);
    if (options.expectedVersion !== undefined) pending.expectedVersion = options.expectedVersion;
    pending.built = true;
    return event;
  }
}

/** The key `build` takes an aggregate under: its class name, camel-cased (`subscription`). */
export function aggregateKeyOf(aggregateClass: Function): string {
  return aggregateClass.name.charAt(0).toLowerCase() + aggregateClass.name.slice(1);
}

/**
 * `manager.insert` merges RETURNING values into the entity without running transformers, so the
 * bigint columns arrive as strings there (`save` runs them).
 */
export function numberReturnedValues(event: AggregateEvent): void {
  for (const key of ['id', 'position', 'txId'] as const) {
    const value: unknown = event[key];
    if (typeof value === 'string') event[key] = Number(value);
  }
}

const integer = {
  to: (value: unknown) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};
const prototype = AggregateEvent.prototype;
getMetadataArgsStorage().columns.push({
  target: AggregateEvent,
  propertyName: 'id',
  mode: 'regular',
  options: { type: 'bigint', primary: true, transformer: integer },
});
getMetadataArgsStorage().generations.push({ target: AggregateEvent, propertyName: 'id', strategy: 'increment' });
// Runs before any subscriber, in every DataSource: without an attached EventSourcing nothing
// would apply the event, and TypeORM would send an INSERT missing its version and aggregate.
Object.defineProperty(prototype, 'assertWritePathAttached', {
  value(this: AggregateEvent) {
    if (!isAttached(this.constructor)) {
      throw new EventSourcingConfigError(
        `${this.type} was saved through a DataSource without EventSourcing: call EventSourcing.attach(dataSource) after dataSource.initialize(), before writing events`,
      );
    }
  },
});
getMetadataArgsStorage().entityListeners.push({ target: AggregateEvent, propertyName: 'assertWritePathAttached', type: 'before-insert' });
Column({ type: 'int' })(prototype, 'version');
Column({ name: 'schema_version', type: 'int', default: 1 })(prototype, 'schemaVersion');
Column({ type: 'jsonb' })(prototype, 'data');
Column({ type: 'jsonb' })(prototype, 'metadata');
Column({ name: 'created_at', type: 'timestamptz', precision: 3 })(prototype, 'createdAt');
Column({
  type: 'bigint',
  // No column default: the trigger `es_position` (es.schema, eventSourcingMigration) draws the
  // value from the `es_event_position` sequence in the events table's own schema, which no
  // default declared here, once for every DataSource, could name. `null` rather than no default
  // so that TypeORM still reads the value back (INSERT ... RETURNING) into the saved event;
  // `nullable: false` keeps the column NOT NULL, so an events table without the trigger refuses
  // the insert instead of storing an event without a position.
  default: null,
  nullable: false,
  transformer: integer,
})(prototype, 'position');
// Column defaults are written exactly as TypeORM reads them back from PostgreSQL, which drops
// every `::type` cast from the stored expression; with a cast here, `migration:generate` would
// emit an ALTER ... SET DEFAULT on every events table, every time.
Column({
  name: 'tx_id',
  type: 'bigint',
  // The same value as pg_current_xact_id() (epoch-extended, 64-bit), as a bigint without a cast.
  default: () => 'txid_current()',
  transformer: integer,
})(prototype, 'txId');
