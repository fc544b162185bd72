import { In, type DataSource, type Driver, type EntityManager } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import type { AggregateEvent } from '../events/aggregate-event';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { tableSql } from '../schema/table-sql';

/**
 * Where a projection has got to: the last event it handled, as the pair (transaction id,
 * position). Never the position alone: positions are drawn before commit, so a transaction that
 * took a lower position can commit after one that took a higher one; see docs/projections.md.
 */
export interface Checkpoint {
  /** The id of the transaction that wrote the last handled event (`tx_id`). */
  readonly txId: number;
  /** That event's global position. */
  readonly position: number;
}

/** How far a projection is behind the events it handles. */
export interface ProjectionLag {
  /** Events of its types after its checkpoint, committed and visible now. */
  readonly events: number;
  /** The age in seconds of the oldest of them (by `created_at`); 0 when there are none. */
  readonly seconds: number;
}

/** One events table a stream reads, and the stored type names it reads there. */
export interface StreamSource {
  readonly definition: AggregateDefinition;
  /** Stored names (`@EventType` names and their aliases) of the events to read. */
  readonly types: readonly string[];
}

/** An event read by a stream, with the table it came from (for error reports). */
export interface StreamedEvent {
  readonly event: AggregateEvent;
  /** The events table's name. */
  readonly table: string;
}

/**
 * The events tables and stored type names of some event classes, one source per table.
 *
 * @throws EventSourcingConfigError for a class that is not an event class of this DataSource.
 */
export function sourcesOf(dataSource: DataSource, registry: EventSourcingRegistry, subject: string, classes: readonly Function[]): StreamSource[] {
  const storage = getMetadataStorage();
  const byTable = new Map<AggregateDefinition, Set<string>>();
  for (const eventClass of classes) {
    const definition = dataSource.hasMetadata(eventClass) ? registry.forEventsMetadata(dataSource.getMetadata(eventClass)) : undefined;
    if (!definition) {
      throw new EventSourcingConfigError(`${subject}: ${eventClass.name} is not an event class of this DataSource: list it in the DataSource's entities`);
    }
    const types = byTable.get(definition) ?? new Set<string>();
    for (const name of storage.storedNamesOf(eventClass)) types.add(name);
    byTable.set(definition, types);
  }
  return [...byTable].map(([definition, types]) => ({ definition, types: [...types] }));
}

/** Which events a {@link EventStream.readRange} reads, besides their types. */
export interface StreamRange {
  /** One aggregate's events only (its id as the events table stores it); read in version order. */
  readonly aggregateId?: unknown;
  /** Events created at or after this moment. */
  readonly from?: Date;
  /** Events created before this moment. */
  readonly to?: Date;
  /** Events at this position or later. */
  readonly fromPosition?: number;
  /** Events at this position or earlier. */
  readonly toPosition?: number;
}

/** Where a {@link EventStream.readRange} stopped: the last event read. */
export interface RangeCursor {
  readonly txId: number;
  readonly position: number;
  readonly version: number;
}

/** Bigint bounds as text: pg takes them exactly, where a JavaScript number could not hold them. */
const BEFORE_EVERYTHING = '-9223372036854775808';

/** A row of the batch query: which source, and the event's keys. */
interface KeyRow {
  source: number;
  id: string;
  txId: string;
  position: string;
}

/**
 * Reads events of some types across one or more events tables in `(tx_id, position)` order,
 * after a checkpoint, a bounded batch at a time, and hydrates them as event class instances.
 *
 * Only transactions that have ended are read: the query keeps `tx_id` below the xmin of its own
 * snapshot, the oldest transaction still running when it started. A transaction that is still
 * open may yet commit events with a lower `(tx_id, position)` than events already committed;
 * reading past them would skip them forever. Below xmin nothing can appear any more, so a
 * checkpoint there is final. Both the horizon and the read are one statement, so they share one
 * snapshot.
 */
export class EventStream {
  readonly #driver: Driver;
  readonly #sources: readonly StreamSource[];

  constructor(driver: Driver, sources: readonly StreamSource[]) {
    this.#driver = driver;
    this.#sources = sources;
  }

  /** The events tables read, by name. */
  get tables(): string[] {
    return this.#sources.map((source) => source.definition.eventsMetadata.tableName);
  }

  /**
   * At most `limit` events after `after` (from the first event when `null`), in `(tx_id,
   * position)` order, from transactions below the horizon. Runs in `manager`'s transaction.
   */
  async read(manager: EntityManager, after: Checkpoint | null, limit: number): Promise<StreamedEvent[]> {
    const horizon = 'txid_snapshot_xmin(txid_current_snapshot())';
    // One keyset query per table, each able to walk its (tx_id, position) index and stop at the
    // limit; the union is merged and cut to the limit again.
    const parts = this.#sources.map((source, index) => {
      const c = this.#columns(source);
      return (
        `(SELECT ${index} AS "source", ${c.id}::text AS "id", ${c.txId}::text AS "txId", ${c.position}::text AS "position" FROM ${c.table} ` +
        `WHERE ${c.type} = ANY($${index + 4}::text[]) AND (${c.txId}, ${c.position}) > ($1::bigint, $2::bigint) AND ${c.txId} < ${horizon} ` +
        `ORDER BY ${c.txId}, ${c.position} LIMIT $3)`
      );
    });
    const sql = `SELECT "source", "id", "txId", "position" FROM (${parts.join(' UNION ALL ')}) batch ORDER BY "txId"::bigint, "position"::bigint LIMIT $3`;
    const rows: KeyRow[] = await manager.query(sql, [...this.#bounds(after), limit, ...this.#sources.map((source) => source.types)]);
    return this.#hydrate(manager, rows);
  }

  /**
   * At most `limit` events after `after` within `range`, as `manager`'s snapshot sees them: for
   * one-off reads in one snapshot (`es.fold`), where no horizon is needed because nothing can
   * appear between two reads of the same snapshot. In `(tx_id, position)` order, the order
   * projections see; one aggregate's events (`range.aggregateId`, a single source) in version
   * order, on the (aggregate, version) index.
   */
  async readRange(manager: EntityManager, range: StreamRange, after: RangeCursor | null, limit: number): Promise<StreamedEvent[]> {
    const byVersion = range.aggregateId !== undefined;
    const parameters: unknown[] = [limit];
    const parameter = (value: unknown) => `$${parameters.push(value)}`;
    const parts = this.#sources.map((source, index) => {
      const c = this.#columns(source);
      const where = [`${c.type} = ANY(${parameter(source.types)}::text[])`];
      if (byVersion) {
        where.push(`${c.aggregateId} = ${parameter(range.aggregateId)}`);
        if (after) where.push(`${c.version} > ${parameter(after.version)}`);
      } else if (after) {
        where.push(`(${c.txId}, ${c.position}) > (${parameter(String(after.txId))}::bigint, ${parameter(String(after.position))}::bigint)`);
      }
      if (range.from) where.push(`${c.createdAt} >= ${parameter(range.from)}`);
      if (range.to) where.push(`${c.createdAt} < ${parameter(range.to)}`);
      if (range.fromPosition !== undefined) where.push(`${c.position} >= ${parameter(String(range.fromPosition))}::bigint`);
      if (range.toPosition !== undefined) where.push(`${c.position} <= ${parameter(String(range.toPosition))}::bigint`);
      const order = byVersion ? `${c.version}` : `${c.txId}, ${c.position}`;
      return (
        `(SELECT ${index} AS "source", ${c.id}::text AS "id", ${c.txId}::text AS "txId", ${c.position}::text AS "position", ${c.version} AS "version" ` +
        `FROM ${c.table} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT $1)`
      );
    });
    const order = byVersion ? '"version"' : '"txId"::bigint, "position"::bigint';
    const rows: KeyRow[] = await manager.query(`SELECT * FROM (${parts.join(' UNION ALL ')}) batch ORDER BY ${order} LIMIT $1`, parameters);
    return this.#hydrate(manager, rows);
  }

  /**
   * Whether events of the stream's types after `after` are committed and visible but not
   * readable yet, held back by a transaction still open below them. That transaction commits or
   * rolls back without a word to anyone; whoever waits for these events should look again soon
   * rather than wait for the next commit.
   */
  async heldBack(manager: EntityManager, after: Checkpoint | null): Promise<boolean> {
    const horizon = 'txid_snapshot_xmin(txid_current_snapshot())';
    const parts = this.#sources.map((source, index) => {
      const c = this.#columns(source);
      return `EXISTS (SELECT 1 FROM ${c.table} WHERE ${c.type} = ANY($${index + 3}::text[]) AND (${c.txId}, ${c.position}) > ($1::bigint, $2::bigint) AND ${c.txId} >= ${horizon})`;
    });
    const [row]: { held: boolean }[] = await manager.query(`SELECT ${parts.join(' OR ')} AS "held"`, [
      ...this.#bounds(after),
      ...this.#sources.map((source) => source.types),
    ]);
    return row.held;
  }

  /** How many events of the stream's types come after `after`, and the age of the oldest. */
  async lag(manager: EntityManager, after: Checkpoint | null): Promise<ProjectionLag> {
    // Not bounded by the horizon: an event committed above it is visible, just not handled yet.
    const parts = this.#sources.map((source, index) => {
      const c = this.#columns(source);
      return `SELECT ${c.createdAt} AS "createdAt" FROM ${c.table} WHERE ${c.type} = ANY($${index + 3}::text[]) AND (${c.txId}, ${c.position}) > ($1::bigint, $2::bigint)`;
    });
    const [row]: { events: string; seconds: number | null }[] = await manager.query(
      `SELECT count(*)::text AS "events", greatest(0, extract(epoch FROM clock_timestamp() - min("createdAt")))::float8 AS "seconds" FROM (${parts.join(' UNION ALL ')}) lagging`,
      [...this.#bounds(after), ...this.#sources.map((source) => source.types)],
    );
    return { events: Number(row.events), seconds: row.seconds ?? 0 };
  }

  #bounds(after: Checkpoint | null): [string, string] {
    return after ? [String(after.txId), String(after.position)] : [BEFORE_EVERYTHING, BEFORE_EVERYTHING];
  }

  #columns(source: StreamSource) {
    const metadata = source.definition.eventsMetadata;
    const column = (property: string) => this.#driver.escape(metadata.findColumnWithPropertyName(property)!.databaseName);
    return {
      table: tableSql(this.#driver, metadata),
      id: column('id'),
      txId: column('txId'),
      position: column('position'),
      createdAt: column('createdAt'),
      version: column('version'),
      aggregateId: this.#driver.escape(metadata.findColumnWithPropertyName('aggregateId')!.databaseName),
      type: this.#driver.escape(metadata.discriminatorColumn!.databaseName),
    };
  }

  /**
   * The rows as event instances, in the rows' order. Loaded by TypeORM (one query per table), so
   * each event is what a find of its events class gives: its class by stored type (aliases
   * included) and its data upcast to the class's current version.
   */
  async #hydrate(manager: EntityManager, rows: readonly KeyRow[]): Promise<StreamedEvent[]> {
    const loaded = new Map<string, AggregateEvent>();
    const idsBySource = new Map<number, string[]>();
    for (const row of rows) {
      const ids = idsBySource.get(row.source) ?? [];
      ids.push(row.id);
      idsBySource.set(row.source, ids);
    }
    for (const [index, ids] of idsBySource) {
      const target = this.#sources[index].definition.eventsMetadata.target;
      const events = await manager.find<AggregateEvent>(target, { where: { id: In(ids) } as never });
      for (const event of events) loaded.set(`${index}:${String(event.id)}`, event);
    }
    return rows.map((row) => {
      const event = loaded.get(`${row.source}:${row.id}`);
      const table = this.#sources[row.source].definition.eventsMetadata.tableName;
      // Events are append-only (UPDATE and DELETE are refused), so a row read a moment ago is there.
      if (!event) throw new Error(`${table}: event ${row.id} was read but could not be loaded`);
      return { event, table };
    });
  }
}
