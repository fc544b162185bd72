import type { Driver, EntityManager, EntityMetadata } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { UnknownEventTypeError } from '../errors/unknown-event-type-error';
import { UsageError } from '../errors/usage-error';
import { AggregateEvent } from '../events/aggregate-event';
import { hydrateData } from '../events/event-data';
import { getMetadataStorage, type DataRecord } from '../metadata/metadata-storage';
import { tableSql } from '../schema/table-sql';
import { EventSourcingSubscriber } from '../subscriber/event-sourcing-subscriber';

/** Events read per query by the replays, unless the caller says otherwise. */
export const DEFAULT_EVENT_BATCH_SIZE = 5000;

/** `eventBatchSize` as given, checked; the default when left out. */
export function eventBatchSizeOf(subject: string, value: unknown): number {
  if (value === undefined) return DEFAULT_EVENT_BATCH_SIZE;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(subject, 'eventBatchSize', `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * The columns every events table has (AggregateEvent's), in the order of the JSON array they are
 * read in (see EventReader). All are NOT NULL and of types JSON carries exactly: integers,
 * jsonb, and `created_at` as epoch milliseconds.
 */
const JSON_COLUMNS = ['id', 'version', 'schemaVersion', 'position', 'txId', 'createdAt', 'metadata', 'data'] as const;
const CREATED_AT = JSON_COLUMNS.indexOf('createdAt');
const DATA = JSON_COLUMNS.indexOf('data');
/** The columns of an events class that declares none of its own, in TypeORM's order. */
const STANDARD_ORDER = ['id', 'version', 'schemaVersion', 'data', 'metadata', 'createdAt', 'position', 'txId', 'aggregateId'].join();

/** How one column of a stored type becomes a property of its event. */
interface Source {
  readonly column: ColumnMetadata;
  /** Index in the JSON array, or -1 for a column read as a field of its own. */
  readonly index: number;
  /** The field's alias when `index` is -1. */
  readonly alias: string;
  /** Assigned as a plain property (what setEntityValue does for a column not in an embedded). */
  readonly plain: boolean;
}

/** What hydrating a row of one stored type takes, worked out once per event class. */
interface EventShape {
  readonly metadata: EntityMetadata;
  readonly typeName: string;
  readonly records: readonly DataRecord[];
  /** In TypeORM's order (the metadata's columns), so the instance's own keys come in the same order. */
  readonly sources: readonly Source[];
  /** `data` goes through hydrateData with the records above: what AggregateEvent's setter does. */
  readonly ownDataSetter: boolean;
  /** `new` as TypeORM does (its default), unless the entity skips constructors. */
  readonly construct: boolean;
  /** TypeORM's create() does more for this entity (typename option, lazy relations): call it. */
  readonly viaCreate: boolean;
  /**
   * The columns are AggregateEvent's and the aggregate id, in the order every events class has
   * them: hydrated by #hydrateStandard, whose property names are constants for V8 to optimise.
   */
  readonly standard: boolean;
}

/** A row as `manager.query` returns it: `j` (the JSON array), `t` (the stored type), `f0`... */
type RawRow = Record<string, unknown>;

const dataSetter = Object.getOwnPropertyDescriptor(AggregateEvent.prototype, 'data')!.set;

function dataSetterOf(target: Function): unknown {
  for (let prototype = target.prototype; prototype; prototype = Object.getPrototypeOf(prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, 'data');
    if (descriptor) return descriptor.set;
  }
  return undefined;
}

let cursors = 0;

/**
 * Reads an aggregate's events table for the replays (verify, rebuild, stateAt) and hydrates the
 * rows into event instances with the values TypeORM's find gives them: the class the stored type
 * names, made as TypeORM makes it (`new`), every column's value as TypeORM hydrates it, `data`
 * checked against the class's `@Data` records, and a stored type no class claims raising
 * `UnknownEventTypeError`, as TypeORM's load does through the subscriber.
 *
 * What it avoids is the cost: TypeORM's query builder and its per-row transformation, and pg's
 * parsing of ten fields per row (one string and one parser call each, timestamps through a
 * regular expression) took most of a replay's time. The columns every events table has come as
 * one JSON array per row, built by PostgreSQL and parsed by one JSON.parse; the aggregate id and
 * any column an event class adds come as fields of their own, parsed by pg as for TypeORM.
 */
export class EventReader {
  static #readers = new WeakMap<AggregateDefinition, EventReader>();

  /** The reader of an aggregate's events table (one per definition, built on first use). */
  static of(definition: AggregateDefinition): EventReader {
    let reader = EventReader.#readers.get(definition);
    if (!reader) {
      reader = new EventReader(definition);
      EventReader.#readers.set(definition, reader);
    }
    return reader;
  }

  readonly #definition: AggregateDefinition;
  readonly #driver: Driver;
  readonly #select: string;
  readonly #table: string;
  readonly #aggregateColumn: string;
  readonly #versionColumn: string;
  readonly #createdAtColumn: string;
  readonly #aggregateIdAlias: string;
  readonly #aggregateIdColumn: ColumnMetadata;
  readonly #columns: Record<(typeof JSON_COLUMNS)[number], ColumnMetadata>;
  /** Keyed by stored type; the first class TypeORM would pick for it. */
  readonly #shapes = new Map<unknown, EventShape>();
  /** Subscribers or listeners other than this library's listen to loads: they must see these events too. */
  readonly #broadcastLoads: boolean;

  private constructor(definition: AggregateDefinition) {
    this.#definition = definition;
    const metadata = definition.eventsMetadata;
    const driver = metadata.connection.driver;
    this.#driver = driver;
    this.#table = tableSql(driver, metadata);
    const named = (property: string) => driver.escape(metadata.findColumnWithPropertyName(property)!.databaseName);
    this.#aggregateColumn = named('aggregateId');
    this.#versionColumn = named('version');
    this.#createdAtColumn = named('createdAt');
    const jsonIndexOf = (column: ColumnMetadata) => (column.target === AggregateEvent ? (JSON_COLUMNS as readonly string[]).indexOf(column.propertyName) : -1);
    const elements = JSON_COLUMNS.map((property) => {
      const column = metadata.findColumnWithPropertyName(property)!;
      const name = driver.escape(column.databaseName);
      if (property === 'createdAt') {
        // Epoch milliseconds carry the instant of a millisecond-precision timestamptz, floored as
        // pg's parser truncates sub-millisecond digits; rounding to microseconds first keeps the
        // double precision arithmetic exact. Infinities go as strings, which JSON can carry.
        return `CASE WHEN isfinite(${name}) THEN floor(round(date_part('epoch', ${name}) * 1000000) / 1000)::text ELSE '"' || ${name}::text || '"' END`;
      }
      return column.isNullable ? `coalesce(${name}::text, 'null')` : `${name}::text`;
    });
    const fields = metadata.columns.filter((c) => !c.isVirtual && c.isSelect && jsonIndexOf(c) < 0);
    const aliasOf = new Map(fields.map((c, index) => [c.databaseName, `f${index}`]));
    this.#select = [
      `'[' || ${elements.join(` || ',' || `)} || ']' AS "j"`,
      `${driver.escape(metadata.discriminatorColumn!.databaseName)} AS "t"`,
      ...fields.map((c) => `${driver.escape(c.databaseName)} AS "${aliasOf.get(c.databaseName)}"`),
    ].join(', ');
    const aggregateIdColumn = metadata.findColumnWithPropertyName('aggregateId')!;
    this.#aggregateIdAlias = aliasOf.get(aggregateIdColumn.databaseName)!;
    this.#columns = Object.fromEntries(JSON_COLUMNS.map((property) => [property, metadata.findColumnWithPropertyName(property)!])) as Record<
      (typeof JSON_COLUMNS)[number],
      ColumnMetadata
    >;
    this.#aggregateIdColumn = aggregateIdColumn;
    const storage = getMetadataStorage();
    const typename = metadata.connection.options.typename;
    for (const child of metadata.childEntityMetadatas) {
      if (this.#shapes.has(child.discriminatorValue)) continue;
      const target = child.target as Function;
      // As TypeORM: the child's own columns, not those of classes extending it.
      const columns = child.columns.filter(
        (c) => !c.isVirtual && c.isSelect && !child.childEntityMetadatas.some((grandchild) => grandchild.target === c.target),
      );
      this.#shapes.set(child.discriminatorValue, {
        metadata: child,
        typeName: storage.eventTypeOf(target)?.name ?? target.name,
        records: storage.dataOf(target),
        sources: columns.map((column) => ({
          column,
          index: jsonIndexOf(column),
          alias: aliasOf.get(column.databaseName) ?? '',
          plain: !column.embeddedMetadata,
        })),
        ownDataSetter: dataSetterOf(target) === dataSetter,
        construct: child.isAlwaysUsingConstructor,
        viaCreate: Boolean(typename) || child.lazyRelations.length > 0,
        standard: columns.map((c) => (jsonIndexOf(c) >= 0 ? c.propertyName : c === aggregateIdColumn ? 'aggregateId' : '?')).join() === STANDARD_ORDER,
      });
    }
    const subscribers = metadata.connection.subscribers;
    this.#broadcastLoads =
      metadata.afterLoadListeners.length > 0 ||
      subscribers.some((subscriber) => !(subscriber instanceof EventSourcingSubscriber) && typeof subscriber.afterLoad === 'function');
  }

  /**
   * The events of some aggregates (ids as the database returns them), each aggregate's events
   * consecutive and in version order, at most `batchSize` events per yielded array. Aggregates
   * without events are skipped. Runs in the caller's transaction.
   *
   * A cursor, fetched a batch at a time: one ordered index scan, as a single query would do,
   * with memory bounded by the batch however the events are spread over the aggregates. (Keyset
   * pagination, `= ANY(ids) AND (id, version) > (...)`, is no good before PostgreSQL 17: such a
   * scan starts every aggregate at its first entry, so each batch reads more of the index than
   * the one before; reading whole aggregates a group at a time cost far more server time than
   * the cursor.) The next batch is fetched while this one is replayed.
   */
  async *eventsOf(manager: EntityManager, rawIds: readonly unknown[], batchSize: number): AsyncGenerator<AggregateEvent[]> {
    if (rawIds.length === 0) return;
    if (!manager.queryRunner?.isTransactionActive) throw new Error('EventReader.eventsOf runs in a transaction');
    const cursor = `typeorm_es_replay_${(cursors += 1)}`;
    await manager.query(
      `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${this.#select} FROM ${this.#table} WHERE ${this.#aggregateColumn} = ANY($1) ORDER BY ${this.#aggregateColumn}, ${this.#versionColumn}`,
      [rawIds],
    );
    const fetch = () => ignoringRejection(manager.query(`FETCH FORWARD ${batchSize} FROM ${cursor}`) as Promise<RawRow[]>);
    let next: Promise<RawRow[]> | undefined = fetch();
    while (next) {
      const rows: RawRow[] = await next;
      next = rows.length === batchSize ? fetch() : undefined;
      if (rows.length > 0) yield await this.#hydrate(manager, rows);
    }
    await manager.query(`CLOSE ${cursor}`);
  }

  /**
   * One aggregate's events in version order, at most `batchSize` per yielded array: those up to
   * a version, or those written at or before a moment. Keyset pagination on the version, the
   * next batch requested while this one is replayed.
   */
  async *historyOf(
    manager: EntityManager,
    id: unknown,
    until: { version: number } | { at: Date },
    batchSize: number,
  ): AsyncGenerator<AggregateEvent[]> {
    const rawId = this.#driver.preparePersistentValue(id, this.#definition.primaryColumn);
    const bound = 'version' in until ? `${this.#versionColumn} <= $3` : `${this.#createdAtColumn} <= $3`;
    const limit = 'version' in until ? until.version : until.at;
    const sql = `SELECT ${this.#select} FROM ${this.#table} WHERE ${this.#aggregateColumn} = $1 AND ${this.#versionColumn} > $2 AND ${bound} ORDER BY ${this.#versionColumn} LIMIT ${batchSize}`;
    const read = (after: number) => ignoringRejection(manager.query(sql, [rawId, after, limit]) as Promise<RawRow[]>);
    let next: Promise<RawRow[]> | undefined = read(0);
    while (next) {
      const rows: RawRow[] = await next;
      next = undefined;
      if (rows.length === batchSize) {
        const last = lastVersionOf(rows[rows.length - 1]);
        if (!('version' in until) || last < until.version) next = read(last);
      }
      if (rows.length > 0) yield await this.#hydrate(manager, rows);
    }
  }

  async #hydrate(manager: EntityManager, rows: readonly RawRow[]): Promise<AggregateEvent[]> {
    const events = new Array<AggregateEvent>(rows.length);
    for (let i = 0; i < rows.length; i += 1) events[i] = this.#hydrateRow(rows[i]);
    if (this.#broadcastLoads) await this.#broadcast(manager, events);
    return events;
  }

  #hydrateRow(row: RawRow): AggregateEvent {
    const values = JSON.parse(row.j as string) as unknown[];
    const shape = this.#shapes.get(row.t);
    if (!shape) throw this.#unknownType(values, row.t);
    const target = shape.metadata.target as new () => AggregateEvent;
    const event: AggregateEvent = shape.viaCreate
      ? (shape.metadata.create(undefined, { fromDeserializer: true }) as AggregateEvent)
      : shape.construct
        ? new target()
        : Object.create(target.prototype);
    if (shape.standard && shape.ownDataSetter) return this.#hydrateStandard(event, values, row[this.#aggregateIdAlias], shape);
    const properties = event as unknown as Record<string, unknown>;
    for (const { column, index, alias, plain } of shape.sources) {
      let value: unknown;
      if (index < 0) {
        value = row[alias];
        if (value === undefined) continue;
        value = this.#driver.prepareHydratedValue(value, column);
      } else {
        value = values[index];
        if (index === DATA && shape.ownDataSetter) {
          hydrateData(shape.typeName, event, shape.records, value);
          continue;
        }
        value = index === CREATED_AT ? createdAtOf(value) : fromJson(column, value);
      }
      if (plain) properties[column.propertyName] = value;
      else column.setEntityValue(event, value);
    }
    return event;
  }

  /** #hydrateRow for the usual shape, the same steps in the same order, written out. */
  #hydrateStandard(event: AggregateEvent, values: unknown[], aggregateId: unknown, shape: EventShape): AggregateEvent {
    const columns = this.#columns;
    event.id = fromJson(columns.id, values[0]) as number;
    event.version = fromJson(columns.version, values[1]) as number;
    event.schemaVersion = fromJson(columns.schemaVersion, values[2]) as number;
    hydrateData(shape.typeName, event, shape.records, values[DATA]);
    event.metadata = fromJson(columns.metadata, values[6]) as AggregateEvent['metadata'];
    event.createdAt = createdAtOf(values[CREATED_AT]) as Date;
    event.position = fromJson(columns.position, values[3]) as number;
    event.txId = fromJson(columns.txId, values[4]) as number;
    if (aggregateId !== undefined) event.aggregateId = this.#driver.prepareHydratedValue(aggregateId, this.#aggregateIdColumn);
    return event;
  }

  #unknownType(values: readonly unknown[], stored: unknown): UnknownEventTypeError {
    const metadata = this.#definition.eventsMetadata;
    const id = this.#driver.prepareHydratedValue(values[JSON_COLUMNS.indexOf('id')], metadata.primaryColumns[0]);
    return new UnknownEventTypeError(metadata.tableName, id, String(stored));
  }

  /** TypeORM's find hands loaded entities to afterLoad subscribers and listeners; so does this. */
  async #broadcast(manager: EntityManager, events: AggregateEvent[]): Promise<void> {
    const queryRunner = manager.queryRunner ?? manager.connection.createQueryRunner();
    try {
      await queryRunner.broadcaster.broadcast('Load', this.#definition.eventsMetadata, events);
    } finally {
      if (!manager.queryRunner) await queryRunner.release();
    }
  }
}

/** What pg's parser makes of `created_at` (a Date; ±Infinity for infinite timestamps), from the JSON element. */
function createdAtOf(value: unknown): unknown {
  return typeof value === 'number' ? new Date(value) : value === 'infinity' ? Infinity : -Infinity;
}

/**
 * A JSON element as TypeORM hydrates the column: the value pg would give (JSON makes the same
 * number of an integer's digits as Number does, and the same object of a jsonb), through the
 * column's transformer, the library's own `integer` (Number) on id, position and txId.
 */
function fromJson(column: ColumnMetadata, value: unknown): unknown {
  const transformer = column.transformer;
  if (!transformer) return value;
  return Array.isArray(transformer) ? transformer.reduceRight((result, t) => t.from(result), value) : transformer.from(value);
}

function lastVersionOf(row: RawRow): number {
  return (JSON.parse(row.j as string) as unknown[])[JSON_COLUMNS.indexOf('version')] as number;
}

/**
 * A read started ahead of need may be abandoned (the replay failed meanwhile); its rejection is
 * then nobody's to report. Awaited, the promise still rejects.
 */
function ignoringRejection<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
