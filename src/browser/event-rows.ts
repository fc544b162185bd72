import type { DataSource } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { tableSql } from '../schema/table-sql';

/** An event row as the browser shows it: bigints as text, stored JSON as stored (not upcast). */
export interface EventRow {
  /** The events table's name, as causation ids name it. */
  readonly table: string;
  /** The aggregate's entity name. */
  readonly aggregate: string;
  /** The aggregate's id as text. */
  readonly aggregateId: string;
  readonly id: string;
  readonly version: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly createdAt: Date;
  readonly position: string;
  readonly txId: string;
  /** `metadata.correlationId` and `metadata.causationId`, as text when present. */
  readonly correlationId: string | null;
  readonly causationId: string | null;
  /** Only when asked for (`full`). */
  readonly data?: unknown;
  readonly metadata?: Record<string, unknown>;
}

/** The SQL of one events table's columns, quoted by the driver. */
export interface EventColumns {
  readonly table: string;
  readonly id: string;
  readonly aggregateId: string;
  readonly version: string;
  readonly type: string;
  readonly createdAt: string;
  readonly position: string;
  readonly txId: string;
  readonly metadata: string;
  readonly data: string;
  readonly schemaVersion: string;
}

export function eventColumns(definition: AggregateDefinition): EventColumns {
  const metadata = definition.eventsMetadata;
  const driver = metadata.connection.driver;
  const column = (property: string) => driver.escape(metadata.findColumnWithPropertyName(property)!.databaseName);
  return {
    table: tableSql(driver, metadata),
    id: column('id'),
    aggregateId: column('aggregateId'),
    version: column('version'),
    type: driver.escape(metadata.discriminatorColumn!.databaseName),
    createdAt: column('createdAt'),
    position: column('position'),
    txId: column('txId'),
    metadata: column('metadata'),
    data: column('data'),
    schemaVersion: column('schemaVersion'),
  };
}

/** Which rows of the events tables to read, in `(tx_id, position)` order or, for one aggregate, by version. */
export interface EventRowsQuery {
  /**
   * The conditions on one table (joined with AND), its values added through `parameter`, which
   * returns the placeholder; `null` leaves the table out.
   */
  readonly where: (columns: EventColumns, parameter: (value: unknown) => string, definition: AggregateDefinition) => string[] | null;
  readonly order: 'asc' | 'desc';
  /**
   * `version` for the events of one aggregate (on its `(aggregate, version)` index): versions
   * follow the row lock, where transaction ids follow when each transaction began.
   * @defaultValue 'global'
   */
  readonly by?: 'global' | 'version';
  readonly limit: number;
  /** Read data and metadata too. */
  readonly full?: boolean;
}

/**
 * Events of every events table as one list: one keyset query per table, each able to stop at the
 * limit on its `(tx_id, position)` index, merged with UNION ALL and cut to the limit again (as
 * projections read their streams). Every value is a parameter; identifiers come from metadata.
 */
export async function selectEventRows(dataSource: DataSource, definitions: readonly AggregateDefinition[], query: EventRowsQuery): Promise<EventRow[]> {
  const parameters: unknown[] = [query.limit];
  const parameter = (value: unknown) => `$${parameters.push(value)}`;
  const direction = query.order === 'asc' ? 'ASC' : 'DESC';
  const parts: string[] = [];
  for (const definition of definitions) {
    const c = eventColumns(definition);
    const where = query.where(c, parameter, definition);
    if (where === null) continue;
    const full = query.full ? `, ${c.metadata} AS "metadata", ${c.data} AS "data"` : '';
    parts.push(
      `(SELECT ${parameter(definition.eventsMetadata.tableName)}::text AS "table", ${parameter(definition.name)}::text AS "aggregate", ` +
        `${c.aggregateId}::text AS "aggregateId", ${c.id}::text AS "id", ${c.version} AS "version", ${c.type} AS "type", ` +
        `${c.schemaVersion} AS "schemaVersion", ` +
        `${c.createdAt} AS "createdAt", ${c.position}::text AS "position", ${c.txId}::text AS "txId", ` +
        `${c.metadata} ->> 'correlationId' AS "correlationId", ${c.metadata} ->> 'causationId' AS "causationId"${full} ` +
        `FROM ${c.table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ` +
        `ORDER BY ${query.by === 'version' ? `${c.version} ${direction}` : `${c.txId} ${direction}, ${c.position} ${direction}`} LIMIT $1)`,
    );
  }
  if (parts.length === 0) return [];
  const order = query.by === 'version' ? `"version" ${direction}` : `"txId"::bigint ${direction}, "position"::bigint ${direction}`;
  return dataSource.query(`SELECT * FROM (${parts.join(' UNION ALL ')}) found ORDER BY ${order} LIMIT $1`, parameters);
}

/** `<events table>/<id>`, as causation and correlation ids name an event. */
export function eventRef(row: Pick<EventRow, 'table' | 'id'>): string {
  return `${row.table}/${row.id}`;
}

/** The table and id an event reference names, when it has that form. */
export function parseEventRef(ref: string): { table: string; id: string } | undefined {
  const match = /^(.+)\/(\d{1,19})$/.exec(ref);
  return match ? { table: match[1], id: match[2] } : undefined;
}
