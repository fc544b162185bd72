import type { DataSource, Driver, QueryRunner } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { directWriteGuardStatements, dropDirectWriteGuardStatements } from './direct-write-guard';

/** The sequence every events table draws `position` from (see `AggregateEvent.position`). */
export const POSITION_SEQUENCE = 'es_event_position';
/** One row per (event, async reactor) not yet handed to the queue. */
export const OUTBOX_TABLE = 'es_outbox';
/** A random id made when the schema is created, to keep job ids unique per database. */
export const IDENTITY_TABLE = 'es_identity';
const REFUSE_FUNCTION = 'es_refuse_event_change';
const TRIGGER = 'es_append_only';
const TRUNCATE_TRIGGER = 'es_no_truncate';
/**
 * The session setting that lets TRUNCATE through the append-only wall, for test helpers
 * (`SET LOCAL typeorm_es.allow_truncate = on` inside their transaction).
 */
export const ALLOW_TRUNCATE_SETTING = 'typeorm_es.allow_truncate';

function qualifiedTable(driver: Driver, definition: AggregateDefinition): string {
  const { schema, tableName } = definition.eventsMetadata;
  return (schema ? `${driver.escape(schema)}.` : '') + driver.escape(tableName);
}

/**
 * What the library needs in the database besides the tables TypeORM generates: the shared
 * position sequence, the reactor outbox, the database's identity and job-signing key and, on
 * every events table, triggers refusing UPDATE, DELETE and TRUNCATE. Every statement is idempotent and safe to run from several
 * processes at once.
 */
export function schemaStatements(driver: Driver, definitions: readonly AggregateDefinition[]): string[] {
  const statements = [
    `SELECT pg_advisory_xact_lock(hashtext('typeorm-event-sourcing.schema'))`,
    `CREATE SEQUENCE IF NOT EXISTS ${POSITION_SEQUENCE}`,
    `CREATE TABLE IF NOT EXISTS ${OUTBOX_TABLE} (
  id bigserial PRIMARY KEY,
  events_table text NOT NULL,
  event_id bigint NOT NULL,
  event_position bigint NOT NULL,
  event_type text NOT NULL,
  reactor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
    // A random key per row makes every job id new, even when positions repeat after a restore.
    `ALTER TABLE ${OUTBOX_TABLE} ADD COLUMN IF NOT EXISTS job_key uuid NOT NULL DEFAULT gen_random_uuid()`,
    // Set when the job is in the queue, for outboxes kept until their jobs complete.
    `ALTER TABLE ${OUTBOX_TABLE} ADD COLUMN IF NOT EXISTS enqueued_at timestamptz`,
    `CREATE INDEX IF NOT EXISTS ${OUTBOX_TABLE}_created_at ON ${OUTBOX_TABLE} (created_at)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${OUTBOX_TABLE}_job_key ON ${OUTBOX_TABLE} (job_key)`,
    `CREATE TABLE IF NOT EXISTS ${IDENTITY_TABLE} (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id uuid NOT NULL DEFAULT gen_random_uuid()
)`,
    // The key reactor jobs are signed with: whoever can write to Redis cannot forge one.
    `ALTER TABLE ${IDENTITY_TABLE} ADD COLUMN IF NOT EXISTS secret text NOT NULL DEFAULT (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))`,
    `INSERT INTO ${IDENTITY_TABLE} DEFAULT VALUES ON CONFLICT DO NOTHING`,
    `CREATE OR REPLACE FUNCTION ${REFUSE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    IF current_setting('${ALLOW_TRUNCATE_SETTING}', true) = 'on' THEN
      RETURN NULL;
    END IF;
    RAISE EXCEPTION 'events are append-only: TRUNCATE on %.% refused (test helpers: SET LOCAL ${ALLOW_TRUNCATE_SETTING} = on)', TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = 'restrict_violation';
  END IF;
  RAISE EXCEPTION 'events are append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$fn$`,
  ];
  for (const definition of definitions) {
    const table = qualifiedTable(driver, definition);
    const literal = `'${table.replace(/'/g, "''")}'`;
    statements.push(`DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${TRIGGER}' AND tgrelid = ${literal}::regclass) THEN
    CREATE TRIGGER ${TRIGGER} BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ${REFUSE_FUNCTION}();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${TRUNCATE_TRIGGER}' AND tgrelid = ${literal}::regclass) THEN
    CREATE TRIGGER ${TRUNCATE_TRIGGER} BEFORE TRUNCATE ON ${table}
      FOR EACH STATEMENT EXECUTE FUNCTION ${REFUSE_FUNCTION}();
  END IF;
END
$do$`);
  }
  statements.push(...directWriteGuardStatements(driver, definitions));
  return statements;
}

/** The statements that undo {@link schemaStatements}. */
export function dropSchemaStatements(driver: Driver, definitions: readonly AggregateDefinition[]): string[] {
  return [
    ...dropDirectWriteGuardStatements(driver, definitions),
    ...definitions.flatMap((definition) => [
      `DROP TRIGGER IF EXISTS ${TRIGGER} ON ${qualifiedTable(driver, definition)}`,
      `DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER} ON ${qualifiedTable(driver, definition)}`,
    ]),
    `DROP FUNCTION IF EXISTS ${REFUSE_FUNCTION}()`,
    `DROP TABLE IF EXISTS ${OUTBOX_TABLE}`,
    `DROP TABLE IF EXISTS ${IDENTITY_TABLE}`,
    `DROP SEQUENCE IF EXISTS ${POSITION_SEQUENCE}`,
  ];
}

/** Runs statements in one transaction of its own, or in the caller's when one is active. */
async function runStatements(queryRunner: QueryRunner, statements: readonly string[]): Promise<void> {
  const own = !queryRunner.isTransactionActive;
  if (own) await queryRunner.startTransaction();
  try {
    for (const statement of statements) await queryRunner.query(statement);
    if (own) await queryRunner.commitTransaction();
  } catch (error) {
    if (own) await queryRunner.rollbackTransaction();
    throw error;
  }
}

/** The database objects the library needs besides TypeORM's tables, as `es.schema` offers them. */
export interface EventSourcingSchema {
  /** The SQL statements, idempotent, in order. */
  statements(): string[];
  /** The statements as one script, for a migration file or psql. */
  sql(): string;
  /** Runs the statements in one transaction. */
  create(): Promise<void>;
  /** Removes what `create` made (triggers, function, sequence, outbox); tables are TypeORM's. */
  drop(): Promise<void>;
}

export function eventSourcingSchema(dataSource: DataSource, definitions: readonly AggregateDefinition[]): EventSourcingSchema {
  const statements = () => schemaStatements(dataSource.driver, definitions);
  const run = async (list: string[]) => {
    const queryRunner = dataSource.createQueryRunner();
    try {
      await runStatements(queryRunner, list);
    } finally {
      await queryRunner.release();
    }
  };
  return {
    statements,
    sql: () => statements().map((statement) => `${statement};`).join('\n\n'),
    create: () => run(statements()),
    drop: () => run(dropSchemaStatements(dataSource.driver, definitions)),
  };
}
