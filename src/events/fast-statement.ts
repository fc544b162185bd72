import type { Driver, EntityMetadata } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { jobKeySql, OUTBOX_RETURNING } from '../reactors/outbox';
import { libraryObject, OUTBOX_TABLE } from '../schema/event-sourcing-schema';
import { tableSql } from '../schema/table-sql';

/**
 * One write as a single statement: the aggregate row (an UPDATE conditional on the version, or
 * an INSERT), the event row taking the row's id and new version from it, and one outbox row per
 * async reactor, all in one CTE, so that PostgreSQL runs them atomically in autocommit. An
 * UPDATE that matches no row (the version moved) inserts nothing and returns no row.
 */
export interface FastStatement {
  readonly text: string;
  /** The aggregate columns returned, in the order of their aliases `c0`, `c1`... */
  readonly returned: readonly ColumnMetadata[];
}

/** The aggregate's columns as a `find` loads them: every stored column but `select: false` ones. */
function returnedColumns(definition: AggregateDefinition): ColumnMetadata[] {
  return definition.metadata.columns.filter((column) => !column.isVirtual && column.isSelect);
}

function eventsColumn(events: EntityMetadata, property: string): string {
  const column = property === 'type' ? events.discriminatorColumn : events.findColumnWithPropertyName(property);
  return events.connection.driver.escape(column!.databaseName);
}

/** The event row and its outbox rows, fed from the aggregate row `"a"`; parameters from `$first` on. */
function eventAndOutbox(driver: Driver, definition: AggregateDefinition, returned: readonly ColumnMetadata[], first: number, outbox: boolean): string {
  const events = definition.eventsMetadata;
  const column = (property: string) => eventsColumn(events, property);
  const id = `"c${returned.indexOf(definition.primaryColumn)}"`;
  const version = `"c${returned.indexOf(definition.versionColumn)}"`;
  const [type, data, metadata, createdAt, schemaVersion, table, reactors] = [0, 1, 2, 3, 4, 5, 6].map((offset) => `$${first + offset}`);
  let sql = `, "e" AS (INSERT INTO ${tableSql(driver, events)} (${column('aggregateId')}, ${column('version')}, ${column('type')}, ${column('data')}, ${column('metadata')}, ${column('createdAt')}, ${column('schemaVersion')})
  SELECT "a".${id}, "a".${version}, ${type}::varchar, ${data}::jsonb, ${metadata}::jsonb, ${createdAt}::timestamptz, ${schemaVersion}::int FROM "a"
  RETURNING ${column('id')} AS "id", ${column('position')} AS "position", ${column('txId')} AS "txId", ${column('schemaVersion')} AS "schemaVersion")`;
  if (outbox) {
    sql += `, "o" AS (INSERT INTO ${libraryObject(driver, OUTBOX_TABLE)} (events_table, event_id, event_position, event_type, reactor, job_key)
  SELECT ${table}::text, "e"."id", "e"."position", ${type}::varchar, reactor, ${jobKeySql(`${table}::text`, '"e"."id"::text', '"e"."txId"::text', 'reactor')} FROM "e", unnest(${reactors}::text[]) AS reactor
  RETURNING ${OUTBOX_RETURNING})`;
  }
  const outboxRows = outbox ? `, (SELECT coalesce(json_agg("o"), '[]'::json) FROM "o") AS "outbox"` : '';
  return `${sql}
SELECT "a".*, "e"."id"::text AS "event_id", "e"."position"::text AS "event_position", "e"."txId"::text AS "event_tx_id", "e"."schemaVersion" AS "event_schema_version"${outboxRows} FROM "a", "e"`;
}

function returning(driver: Driver, returned: readonly ColumnMetadata[]): string {
  return returned.map((column, index) => `${driver.escape(column.databaseName)} AS "c${index}"`).join(', ');
}

/**
 * The UPDATE of an aggregate row's changed columns and version (+ 1), returning every column.
 * Parameters are the changed columns' values, then the id, then, when `conditional`, the version
 * the row must still be at.
 */
export function rowUpdate(definition: AggregateDefinition, changed: readonly ColumnMetadata[], conditional: boolean, step = '1'): FastStatement {
  const driver = definition.metadata.connection.driver;
  const returned = returnedColumns(definition);
  const assignments = changed.map((column, index) => `${driver.escape(column.databaseName)} = $${index + 1}`);
  const version = driver.escape(definition.versionColumn.databaseName);
  assignments.push(`${version} = ${version} + ${step}`);
  const updateDate = definition.metadata.updateDateColumn;
  if (updateDate) assignments.push(`${driver.escape(updateDate.databaseName)} = CURRENT_TIMESTAMP`);
  const id = changed.length + 1;
  // A soft-deleted row is one TypeORM (and the locked path) does not find.
  const deleteDate = definition.metadata.deleteDateColumn;
  const notDeleted = deleteDate ? ` AND ${driver.escape(deleteDate.databaseName)} IS NULL` : '';
  const condition = conditional ? ` AND ${version} = $${id + 1}${notDeleted}` : '';
  const text = `UPDATE ${tableSql(driver, definition.metadata)} SET ${assignments.join(', ')}
  WHERE ${driver.escape(definition.primaryColumn.databaseName)} = $${id}${condition}
  RETURNING ${returning(driver, returned)}`;
  return { text, returned };
}

/**
 * The event of an existing aggregate, conditional on the version: parameters are the changed
 * columns' values, then id and expected version, then type, data, metadata, createdAt, schema
 * version, events table, reactor names.
 */
export function updateStatement(definition: AggregateDefinition, changed: readonly ColumnMetadata[], outbox: boolean): FastStatement {
  const driver = definition.metadata.connection.driver;
  const update = rowUpdate(definition, changed, true);
  const text = `WITH "a" AS (${update.text})${eventAndOutbox(driver, definition, update.returned, changed.length + 3, outbox)}`;
  return { text, returned: update.returned };
}

/**
 * Several events of one aggregate, in order, conditional on the version before the first:
 * parameters are the changed columns' values, then id, expected version and the number of
 * events, then arrays of their types, data, metadata, createdAt and schema versions, then the events table and
 * the outbox rows as arrays of (event ordinal, reactor name). Returns one row: the aggregate's
 * columns, `events` (a JSON array of the events' ids, positions, txId, schemaVersion, version)
 * and `outbox`.
 */
export function updateManyStatement(definition: AggregateDefinition, changed: readonly ColumnMetadata[], outbox: boolean): FastStatement {
  const driver = definition.metadata.connection.driver;
  const first = changed.length + 3;
  const update = rowUpdate(definition, changed, true, `$${first}`);
  const events = definition.eventsMetadata;
  const column = (property: string) => eventsColumn(events, property);
  const id = `"c${update.returned.indexOf(definition.primaryColumn)}"`;
  const version = `"c${update.returned.indexOf(definition.versionColumn)}"`;
  const [count, types, data, metadata, createdAt, schemaVersions, table, ordinals, reactors] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((offset) => `$${first + offset}`);
  let text = `WITH "a" AS (${update.text}), "e" AS (INSERT INTO ${tableSql(driver, events)} (${column('aggregateId')}, ${column('version')}, ${column('type')}, ${column('data')}, ${column('metadata')}, ${column('createdAt')}, ${column('schemaVersion')})
  SELECT "a".${id}, "a".${version} - ${count}::int + "x"."ordinal", "x"."type", "x"."data", "x"."metadata", "x"."createdAt", "x"."schemaVersion"
  FROM "a", unnest(${types}::varchar[], ${data}::jsonb[], ${metadata}::jsonb[], ${createdAt}::timestamptz[], ${schemaVersions}::int[]) WITH ORDINALITY AS "x"("type", "data", "metadata", "createdAt", "schemaVersion", "ordinal")
  ORDER BY "x"."ordinal"
  RETURNING ${column('id')} AS "id", ${column('position')} AS "position", ${column('txId')} AS "txId", ${column('schemaVersion')} AS "schemaVersion", ${column('version')} AS "version", ${column('type')} AS "type")`;
  if (outbox) {
    text += `, "o" AS (INSERT INTO ${libraryObject(driver, OUTBOX_TABLE)} (events_table, event_id, event_position, event_type, reactor, job_key)
  SELECT ${table}::text, "e"."id", "e"."position", "e"."type", "r"."reactor", ${jobKeySql(`${table}::text`, '"e"."id"::text', '"e"."txId"::text', '"r"."reactor"')}
  FROM "a", "e", unnest(${ordinals}::int[], ${reactors}::text[]) AS "r"("ordinal", "reactor")
  WHERE "e"."version" = "a".${version} - ${count}::int + "r"."ordinal"
  RETURNING ${OUTBOX_RETURNING})`;
  }
  const outboxRows = outbox ? `, (SELECT coalesce(json_agg("o"), '[]'::json) FROM "o") AS "outbox"` : '';
  text += `
SELECT "a".*, (SELECT json_agg(json_build_object('id', "e"."id"::text, 'position', "e"."position"::text, 'txId', "e"."txId"::text, 'schemaVersion', "e"."schemaVersion", 'version', "e"."version")) FROM "e") AS "events"${outboxRows} FROM "a"`;
  return { text, returned: update.returned };
}

/**
 * The event creating its aggregate: parameters are the given columns' values, then type, data,
 * metadata, createdAt, schema version, events table, reactor names.
 */
export function insertStatement(definition: AggregateDefinition, given: readonly ColumnMetadata[], outbox: boolean): FastStatement {
  const driver = definition.metadata.connection.driver;
  const returned = returnedColumns(definition);
  const names = given.map((column) => driver.escape(column.databaseName)).join(', ');
  const values = given.map((_, index) => `$${index + 1}`).join(', ');
  const text = `WITH "a" AS (INSERT INTO ${tableSql(driver, definition.metadata)} (${names}) VALUES (${values})
  RETURNING ${returning(driver, returned)})${eventAndOutbox(driver, definition, returned, given.length + 1, outbox)}`;
  return { text, returned };
}

/** Statement texts and their names, for the whole process: two instances never reuse a name. */
const names = new Map<string, string>();
let lastName = 0;

/**
 * The name of a statement text's prepared statement. A name whose plan PostgreSQL refused after
 * a migration (0A000) is retired, and the text gets a new name, prepared afresh on every
 * connection. Names are unique in the process, so a connection that prepared one for some text
 * (perhaps for an EventSourcing instance closed since) never meets it for another text.
 */
export function statementName(text: string): string {
  let name = names.get(text);
  if (!name) names.set(text, (name = `typeorm_es_${(lastName += 1)}`));
  return name;
}

export function retireStatementName(text: string): void {
  names.delete(text);
}
