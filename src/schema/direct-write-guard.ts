import type { Driver } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { tableSql } from './table-sql';

const GUARD_TRIGGER = 'es_direct_writes';
/**
 * The session setting that lets the library's own replays through the guard (`rebuild` writes a
 * version that may jump), for its own transaction only.
 */
export const ALLOW_DIRECT_WRITE_SETTING = 'typeorm_es.allow_direct_write';

function guardFunction(driver: Driver, definition: AggregateDefinition): string {
  return tableSql(driver, { schema: definition.metadata.schema, tableName: `${definition.metadata.tableName}_es_guard` });
}

/**
 * For aggregates with `directWrites: 'reject'`: a trigger refusing any UPDATE that changes a
 * sourced column or the version unless the version rises by exactly one, as every event write
 * does, so raw SQL and other programs cannot change what events decide. One function per table,
 * with the columns written out, so the common case (an event: version + 1) costs one comparison.
 * For other aggregates the trigger is removed, so that switching modes works both ways.
 */
export function directWriteGuardStatements(driver: Driver, definitions: readonly AggregateDefinition[]): string[] {
  return definitions.map((definition) => {
    const table = tableSql(driver, definition.metadata);
    const tableLiteral = `'${table.replace(/'/g, "''")}'`;
    if (definition.directWrites !== 'reject') {
      return `DO $do$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${GUARD_TRIGGER}' AND tgrelid = ${tableLiteral}::regclass) THEN
    DROP TRIGGER ${GUARD_TRIGGER} ON ${table};
  END IF;
END
$do$`;
    }
    const version = driver.escape(definition.versionColumn.databaseName);
    // Compared as text: json, point and friends have no equality operator.
    const changed = [definition.versionColumn, ...definition.sourcedColumns]
      .map((column) => `NEW.${driver.escape(column.databaseName)}::text IS DISTINCT FROM OLD.${driver.escape(column.databaseName)}::text`)
      .join('\n      OR ');
    const message = `${definition.name}: UPDATE of ${definition.metadata.tableName} changes sourced columns without an event (directWrites: reject); write an event instead`.replace(/'/g, "''");
    return `DO $do$
BEGIN
  CREATE OR REPLACE FUNCTION ${guardFunction(driver, definition)}() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF NEW.${version} = OLD.${version} + 1 THEN
      RETURN NEW;
    END IF;
    IF (${changed}) AND current_setting('${ALLOW_DIRECT_WRITE_SETTING}', true) IS DISTINCT FROM 'on' THEN
      RAISE EXCEPTION '${message}' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
  END
  $fn$;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${GUARD_TRIGGER}' AND tgrelid = ${tableLiteral}::regclass) THEN
    CREATE TRIGGER ${GUARD_TRIGGER} BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${guardFunction(driver, definition)}();
  END IF;
END
$do$`;
  });
}

/** The statements that undo {@link directWriteGuardStatements}. */
export function dropDirectWriteGuardStatements(driver: Driver, definitions: readonly AggregateDefinition[]): string[] {
  return definitions.flatMap((definition) => [
    `DROP TRIGGER IF EXISTS ${GUARD_TRIGGER} ON ${tableSql(driver, definition.metadata)}`,
    `DROP FUNCTION IF EXISTS ${guardFunction(driver, definition)}()`,
  ]);
}
