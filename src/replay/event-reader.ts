import type { Driver, EntityManager, EntityMetadata } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { UnknownEventTypeError } from '../errors/unknown-event-type-error';
import { UsageError } from '../errors/usage-error';
import { AggregateEvent } from '../events/aggregate-event';
import { hydrateData } from '../events/event-data';
import { upcastStoredData } from '../events/upcasting';
import { getMetadataStorage, type DataRecord, type EventTypeRecord } from '../metadata/metadata-storage';
import { tableSql } from '../schema/table-sql';
import { EventSourcingSubscriber } from '../subscriber/event-sourcing-subscriber';

/** Events read per query by the replays, unless the caller says otherwise. */
export const DEFAULT_EVENT_BATCH_SIZE = 5000;

/** Events per row of the replay queries (see EventReader). */
const CHUNK = 100;

/**
 * Events stored larger than this (data, metadata and any added column, as PostgreSQL stores them,
 * compressed or not) are read one per query rather than in a row of a hundred, so that no row
 * grows towards the limits of a string (1 GB in PostgreSQL, 512 MB in V8).
 */
const LARGE_EVENT_BYTES = 8192;

/** `eventBatchSize` as given, checked; the default when left out. */
export function eventBatchSizeOf(subject: string, value: unknown): number {
  if (value === undefined) return DEFAULT_EVENT_BATCH_SIZE;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(subject, 'eventBatchSize', `must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/**
 * The columns every events table has (AggregateEvent's and the discriminator), in the order of
 * the JSON array each event is read as. Each is NOT NULL and of a type JSON carries exactly:
 * integers, jsonb, a string, and `created_at` as epoch milliseconds. Columns an events class adds
 * follow, as text, parsed by pg's parser for their type.
 */
const STANDARD = ['id', 'version', 'schemaVersion', 'position', 'txId', 'createdAt', 'metadata', 'data'] as const;
const ID = 0;
const VERSION = 1;
const CREATED_AT = 5;
const DATA = 7;
const TYPE = STANDARD.length;

/** The pg module TypeORM's PostgreSQL driver loaded, whose parsers it uses. */
type PgDriver = Driver & { postgres: { types: { getTypeParser(oid: number, format: 'text'): (text: string) => unknown } } };

type StandardColumns = Record<(typeof STANDARD)[number], ColumnMetadata>;

/** Source.index of the aggregate id, which comes once per row rather than in each event's array. */
const AGGREGATE_ID = -1;

/** How one column of a stored type becomes a property of its event. */
interface Source {
  readonly column: ColumnMetadata;
  /** Index in the event's JSON array; -1 for the aggregate id, read once per row. */
  readonly index: number;
  /** Text to parse with pg's parser for the column's type (a column an events class adds). */
  readonly parse: ((text: string) => unknown) | undefined;
  /** Assigned as a plain property (what setEntityValue does for a column not in an embedded). */
  readonly plain: boolean;
}

/** What hydrating an event of one stored type takes, worked out once per event class. */
interface EventShape {
  readonly metadata: EntityMetadata;
  readonly typeName: string;
  /** The class's `@EventType` record: its version and upcasters. */
  readonly eventType: EventTypeRecord | undefined;
  readonly records: readonly DataRecord[];
  /**
   * In TypeORM's order (the metadata's columns), so the instance's own keys come in the same
   * order. Replaced once the parsers of added columns are known.
   */
  sources: readonly Source[];
  /** `data` goes through hydrateData with the records above: what AggregateEvent's setter does. */
  readonly ownDataSetter: boolean;
  /** `new` as TypeORM does (its default), unless the entity skips constructors. */
  readonly construct: boolean;
  /** TypeORM's create() does more for this entity (typename option, lazy relations): call it. */
  readonly viaCreate: boolean;
  /**
   * AggregateEvent's columns and the aggregate id, in the order every events class has them:
   * hydrated by #hydrateStandard, whose property names are constants V8 optimises.
   */
  readonly standard: boolean;
}

/** A row of the replay queries: the aggregate id as pg parses it, and a JSON array of event arrays. */
interface ChunkRow {
  a: unknown;
  j: string;
}

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
 * names, made as TypeORM makes it (`new`), each column's value as TypeORM hydrates it (its
 * transformer included), `data` checked against the class's `@Data` records, and a stored type
 * no class claims raising `UnknownEventTypeError`, as TypeORM's load does through the subscriber.
 *
 * What it avoids is the cost. TypeORM's query builder and its per-row transformation, then pg's
 * parsing of ten fields per event (a string and a parser call each, timestamps through a regular
 * expression), took most of a replay's time. Here PostgreSQL writes each event as a JSON array
 * and up to a hundred consecutive events of one aggregate as one row, which one JSON.parse reads;
 * an event stored larger than LARGE_EVENT_BYTES stands in that row as its id and is read alone.
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
  readonly #driver: PgDriver;
  readonly #table: string;
  readonly #aggregateColumn: string;
  readonly #versionColumn: string;
  readonly #createdAtColumn: string;
  readonly #aggregateIdColumn: ColumnMetadata;
  readonly #columns: StandardColumns;
  /** Columns an events class adds, in the order they follow the standard ones in the JSON array. */
  readonly #extras: readonly ColumnMetadata[];
  /** SQL of one event as a JSON array. */
  readonly #eventJson: string;
  /** SQL of one event in a row of many: its JSON array, or, when large, its id as a JSON string. */
  readonly #chunkElement: string;
  readonly #idColumn: string;
  /** Keyed by stored type; the first class TypeORM would pick for it. */
  readonly #shapes = new Map<unknown, EventShape>();
  /** Subscribers or listeners other than this library's listen to loads: they must see these events too. */
  readonly #broadcastLoads: boolean;
  #parsersReady: Promise<void> | undefined;

  private constructor(definition: AggregateDefinition) {
    this.#definition = definition;
    const metadata = definition.eventsMetadata;
    const driver = metadata.connection.driver as PgDriver;
    this.#driver = driver;
    this.#table = tableSql(driver, metadata);
    const columnOf = (property: string) => metadata.findColumnWithPropertyName(property)!;
    this.#aggregateIdColumn = columnOf('aggregateId');
    this.#aggregateColumn = driver.escape(this.#aggregateIdColumn.databaseName);
    this.#versionColumn = driver.escape(columnOf('version').databaseName);
    this.#createdAtColumn = driver.escape(columnOf('createdAt').databaseName);
    this.#columns = Object.fromEntries(STANDARD.map((property) => [property, columnOf(property)])) as StandardColumns;
    const standardIndex = (column: ColumnMetadata) => (column.target === AggregateEvent ? (STANDARD as readonly string[]).indexOf(column.propertyName) : -1);
    this.#extras = metadata.columns.filter((c) => !c.isVirtual && c.isSelect && standardIndex(c) < 0 && c !== this.#aggregateIdColumn);
    const elements = STANDARD.map((property) => {
      const column = columnOf(property);
      const name = driver.escape(column.databaseName);
      if (property === 'createdAt') {
        // Epoch milliseconds carry the instant of a millisecond-precision timestamptz, floored as
        // pg's parser truncates sub-millisecond digits; rounding to microseconds first keeps the
        // double precision arithmetic exact. Infinities go as strings.
        return `CASE WHEN isfinite(${name}) THEN floor(round(date_part('epoch', ${name}) * 1000000) / 1000)::text ELSE to_json(${name}::text)::text END`;
      }
      return column.isNullable ? `coalesce(${name}::text, 'null')` : name;
    });
    elements.push(`to_json(${driver.escape(metadata.discriminatorColumn!.databaseName)})::text`);
    for (const extra of this.#extras) elements.push(`coalesce(to_json(${driver.escape(extra.databaseName)}::text)::text, 'null')`);
    // concat_ws turns each value into text with its type's output function, as ::text does, in
    // one call: cheaper than a chain of ||. It skips NULLs, which no element is.
    this.#eventJson = `'[' || concat_ws(',', ${elements.join(', ')}) || ']'`;
    this.#idColumn = driver.escape(columnOf('id').databaseName);
    const size = [columnOf('data'), columnOf('metadata'), ...this.#extras].map((c) => `coalesce(pg_column_size(${driver.escape(c.databaseName)}), 0)`).join(' + ');
    this.#chunkElement = `CASE WHEN ${size} <= ${LARGE_EVENT_BYTES} THEN ${this.#eventJson} ELSE to_json(${this.#idColumn}::text)::text END`;
    const storage = getMetadataStorage();
    const typename = metadata.connection.options.typename;
    for (const child of metadata.childEntityMetadatas) {
      if (this.#shapes.has(child.discriminatorValue)) continue;
      const target = child.target as Function;
      // As TypeORM: the child's own columns, not those of classes extending it.
      const columns = child.columns.filter(
        (c) => !c.isVirtual && c.isSelect && !child.childEntityMetadatas.some((grandchild) => grandchild.target === c.target),
      );
      const sources = columns.map((column) => {
        const extra = this.#extras.findIndex((c) => c.databaseName === column.databaseName);
        const index =
          extra >= 0 ? TYPE + 1 + extra : column.databaseName === this.#aggregateIdColumn.databaseName ? AGGREGATE_ID : standardIndex(column);
        if (index === -1 && column.databaseName !== this.#aggregateIdColumn.databaseName) throw new Error(`${metadata.tableName}: no source for ${column.propertyName}`);
        return { column, index, parse: undefined, plain: !column.embeddedMetadata };
      });
      this.#shapes.set(child.discriminatorValue, {
        metadata: child,
        typeName: storage.eventTypeOf(target)?.name ?? target.name,
        eventType: storage.eventTypeOf(target),
        records: storage.dataOf(target),
        sources,
        ownDataSetter: dataSetterOf(target) === dataSetter,
        construct: child.isAlwaysUsingConstructor,
        viaCreate: Boolean(typename) || child.lazyRelations.length > 0,
        standard: sources.map((s) => (s.index === AGGREGATE_ID ? 'aggregateId' : s.column.propertyName)).join() === STANDARD_ORDER,
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
   * with memory bounded by the batch however the events are spread over the aggregates; rows
   * are grouped in the index's order, so PostgreSQL sorts only within an aggregate (incremental
   * sort). (Keyset
   * pagination, `= ANY(ids) AND (id, version) > (...)`, is no good before PostgreSQL 17: such a
   * scan starts every aggregate at its first entry, so each batch reads more of the index than
   * the one before.) The next batch is fetched while this one is replayed.
   */
  async *eventsOf(manager: EntityManager, rawIds: readonly unknown[], batchSize: number): AsyncGenerator<AggregateEvent[]> {
    if (rawIds.length === 0) return;
    if (!manager.queryRunner?.isTransactionActive) throw new Error('EventReader.eventsOf runs in a transaction');
    await this.#prepareParsers(manager);
    const chunk = Math.min(CHUNK, batchSize);
    const rowsPerBatch = Math.floor(batchSize / chunk);
    const cursor = `typeorm_es_replay_${(cursors += 1)}`;
    const version = this.#versionColumn;
    await manager.query(
      `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${this.#aggregateColumn} AS "a", '[' || string_agg(${this.#chunkElement}, ',' ORDER BY ${version}) || ']' AS "j" ` +
        `FROM ${this.#table} WHERE ${this.#aggregateColumn} = ANY($1) ` +
        `GROUP BY ${this.#aggregateColumn}, (${version} - 1) / ${chunk} ORDER BY ${this.#aggregateColumn}, (${version} - 1) / ${chunk}`,
      [rawIds],
    );
    const fetch = () => ignoringRejection(manager.query(`FETCH FORWARD ${rowsPerBatch} FROM ${cursor}`) as Promise<ChunkRow[]>);
    let next: Promise<ChunkRow[]> | undefined = fetch();
    while (next) {
      const rows: ChunkRow[] = await next;
      next = rows.length === rowsPerBatch ? fetch() : undefined;
      yield* this.#hydrate(manager, rows);
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
    await this.#prepareParsers(manager);
    const rawId = this.#driver.preparePersistentValue(id, this.#definition.primaryColumn);
    const version = this.#versionColumn;
    const bound = 'version' in until ? `${version} <= $3` : `${this.#createdAtColumn} <= $3`;
    const limit = 'version' in until ? until.version : until.at;
    const chunk = Math.min(CHUNK, batchSize);
    const sql =
      `SELECT min(${this.#aggregateColumn}) AS "a", '[' || string_agg(${this.#chunkElement}, ',' ORDER BY ${version}) || ']' AS "j", count(*)::int AS "n", max(${version}) AS "last" ` +
      `FROM (SELECT * FROM ${this.#table} WHERE ${this.#aggregateColumn} = $1 AND ${version} > $2 AND ${bound} ORDER BY ${version} LIMIT ${batchSize}) e ` +
      `GROUP BY (${version} - 1) / ${chunk} ORDER BY (${version} - 1) / ${chunk}`;
    type Row = ChunkRow & { n: number; last: number };
    const read = (after: number) => ignoringRejection(manager.query(sql, [rawId, after, limit]) as Promise<Row[]>);
    let next: Promise<Row[]> | undefined = read(0);
    while (next) {
      const rows: Row[] = await next;
      next = undefined;
      const count = rows.reduce((sum, row) => sum + row.n, 0);
      const last = rows.reduce((max, row) => Math.max(max, row.last), 0);
      if (count === batchSize && !('version' in until && last >= until.version)) next = read(last);
      yield* this.#hydrate(manager, rows);
    }
  }

  /** pg's parsers for the columns an events class adds, by their type's oid (read once). */
  #prepareParsers(manager: EntityManager): Promise<void> {
    if (this.#extras.length === 0) return Promise.resolve();
    this.#parsersReady ??= (async () => {
      const rows: { name: string; oid: number }[] = await manager.query(
        'SELECT attname AS "name", atttypid::int AS "oid" FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped',
        [this.#table],
      );
      const oids = new Map(rows.map((row) => [row.name, row.oid]));
      const types = this.#driver.postgres.types;
      const parserOf = (column: ColumnMetadata) => {
        const oid = oids.get(column.databaseName);
        if (oid === undefined) throw new Error(`${this.#definition.eventsMetadata.tableName} has no column ${column.databaseName}`);
        return types.getTypeParser(oid, 'text');
      };
      for (const shape of this.#shapes.values()) {
        shape.sources = shape.sources.map((source) => (source.index > TYPE ? { ...source, parse: parserOf(source.column) } : source));
      }
    })().catch((error: unknown) => {
      this.#parsersReady = undefined;
      throw error;
    });
    return this.#parsersReady;
  }

  /**
   * The events of some rows, as one array, or several where a large event, read on its own,
   * comes between the others: at most one large event is held at a time.
   */
  async *#hydrate(manager: EntityManager, rows: readonly ChunkRow[]): AsyncGenerator<AggregateEvent[]> {
    let events: AggregateEvent[] = [];
    for (const row of rows) {
      const aggregateId = this.#driver.prepareHydratedValue(row.a, this.#aggregateIdColumn);
      for (const values of JSON.parse(row.j) as (unknown[] | string)[]) {
        if (typeof values !== 'string') {
          events.push(this.#hydrateEvent(values, aggregateId));
          continue;
        }
        if (events.length > 0) yield await this.#loaded(manager, events);
        events = [];
        const [large]: ChunkRow[] = await manager.query(`SELECT ${this.#eventJson} AS "j" FROM ${this.#table} WHERE ${this.#idColumn} = $1`, [values]);
        yield await this.#loaded(manager, [this.#hydrateEvent(JSON.parse(large.j) as unknown[], aggregateId)]);
      }
    }
    if (events.length > 0) yield await this.#loaded(manager, events);
  }

  async #loaded(manager: EntityManager, events: AggregateEvent[]): Promise<AggregateEvent[]> {
    if (this.#broadcastLoads) await this.#broadcast(manager, events);
    return events;
  }

  #hydrateEvent(values: unknown[], aggregateId: unknown): AggregateEvent {
    const shape = this.#shapes.get(values[TYPE]);
    if (!shape) throw this.#unknownType(values);
    const target = shape.metadata.target as new () => AggregateEvent;
    const event: AggregateEvent = shape.viaCreate
      ? (shape.metadata.create(undefined, { fromDeserializer: true }) as AggregateEvent)
      : shape.construct
        ? new target()
        : Object.create(target.prototype);
    if (shape.standard && shape.ownDataSetter) return this.#hydrateStandard(event, values, aggregateId, shape);
    const properties = event as unknown as Record<string, unknown>;
    for (const { column, index, parse, plain } of shape.sources) {
      let value: unknown;
      if (index === AGGREGATE_ID) value = aggregateId;
      else if (index === DATA && shape.ownDataSetter) {
        this.#hydrateData(event, values, shape);
        continue;
      } else if (index === CREATED_AT) value = createdAtOf(values[CREATED_AT]);
      else if (parse) value = values[index] === null ? null : this.#driver.prepareHydratedValue(parse(values[index] as string), column);
      else value = fromJson(column, values[index]);
      if (plain) properties[column.propertyName] = value;
      else column.setEntityValue(event, value);
    }
    return event;
  }

  /** #hydrateEvent for the usual shape: the same steps in the same order, written out. */
  #hydrateStandard(event: AggregateEvent, values: unknown[], aggregateId: unknown, shape: EventShape): AggregateEvent {
    const columns = this.#columns;
    event.id = fromJson(columns.id, values[ID]) as number;
    event.version = fromJson(columns.version, values[VERSION]) as number;
    event.schemaVersion = fromJson(columns.schemaVersion, values[2]) as number;
    this.#hydrateData(event, values, shape);
    event.metadata = fromJson(columns.metadata, values[6]) as AggregateEvent['metadata'];
    event.createdAt = createdAtOf(values[CREATED_AT]) as Date;
    event.position = fromJson(columns.position, values[3]) as number;
    event.txId = fromJson(columns.txId, values[4]) as number;
    event.aggregateId = aggregateId;
    return event;
  }

  /** What AggregateEvent's data setter does: upcast from the row's schema version, then hydrate. */
  #hydrateData(event: AggregateEvent, values: unknown[], shape: EventShape): void {
    const stored = values[DATA];
    const schemaVersion = fromJson(this.#columns.schemaVersion, values[2]);
    const data = schemaVersion === (shape.eventType?.version ?? 1) ? stored : upcastStoredData(shape.eventType, shape.metadata.targetName, stored, schemaVersion, event.id);
    hydrateData(shape.typeName, event, shape.records, data);
  }

  #unknownType(values: readonly unknown[]): UnknownEventTypeError {
    const metadata = this.#definition.eventsMetadata;
    return new UnknownEventTypeError(metadata.tableName, fromJson(this.#columns.id, values[ID]), String(values[TYPE]));
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

/** The columns of an events class that adds none, in TypeORM's order. */
const STANDARD_ORDER = ['id', 'version', 'schemaVersion', 'data', 'metadata', 'createdAt', 'position', 'txId', 'aggregateId'].join();

/** What pg's parser makes of `created_at` (a Date; ±Infinity for an infinite timestamp), from its JSON element. */
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

/**
 * A read started ahead of need may be abandoned (the replay failed meanwhile); its rejection is
 * then nobody's to report. Awaited, the promise still rejects.
 */
export function ignoringRejection<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}
