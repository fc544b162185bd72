import type { DataSource, Driver, QueryRunner } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { directWriteGuardStatements, dropDirectWriteGuardStatements } from './direct-write-guard';
import { tableSql } from './table-sql';

/** The sequence every events table draws `position` from (see `AggregateEvent.position`). */
export const POSITION_SEQUENCE = 'es_event_position';
/** One row per (event, async reactor) not yet handed to the queue (or, kept, not yet completed). */
export const OUTBOX_TABLE = 'es_outbox';
/** A random id made when the schema is created, to keep job ids unique per database. */
export const IDENTITY_TABLE = 'es_identity';
/** One row per projection: its checkpoint and its last error (see src/projections). */
export const PROJECTIONS_TABLE = 'es_projections';
const REFUSE_FUNCTION = 'es_refuse_event_change';
const POSITION_FUNCTION = 'es_assign_position';
const TRIGGER = 'es_append_only';
const TRUNCATE_TRIGGER = 'es_no_truncate';
const POSITION_TRIGGER = 'es_position';
/**
 * The session setting that lets TRUNCATE through the append-only wall, for test helpers
 * (`SET LOCAL typeorm_es.allow_truncate = on` inside their transaction).
 */
export const ALLOW_TRUNCATE_SETTING = 'typeorm_es.allow_truncate';

/**
 * The name of one of the library's own objects (sequence, outbox, identity, functions) as SQL:
 * in the DataSource's `schema` when it names one, as TypeORM puts the tables there; otherwise
 * unqualified, so the search_path decides, as it does for TypeORM's unqualified tables.
 */
export function libraryObject(driver: Driver, name: string): string {
  const schema = (driver.options as { schema?: string }).schema;
  return schema ? `${driver.escape(schema)}.${driver.escape(name)}` : name;
}

/**
 * What the library needs in the database besides the tables TypeORM generates: the shared
 * position sequence, the reactor outbox, the database's identity and job-signing key, the
 * projections' checkpoints and, on
 * every events table, a trigger assigning `position` and triggers refusing UPDATE, DELETE and
 * TRUNCATE. All of it lives in the DataSource's `schema` ({@link libraryObject}). Every
 * statement is idempotent and safe to run from several processes at once.
 */
export function schemaStatements(driver: Driver, definitions: readonly AggregateDefinition[]): string[] {
  const sequence = libraryObject(driver, POSITION_SEQUENCE);
  const outbox = libraryObject(driver, OUTBOX_TABLE);
  const identity = libraryObject(driver, IDENTITY_TABLE);
  const refuse = libraryObject(driver, REFUSE_FUNCTION);
  const assignPosition = libraryObject(driver, POSITION_FUNCTION);
  const projections = libraryObject(driver, PROJECTIONS_TABLE);
  const statements = [
    `SELECT pg_advisory_xact_lock(hashtext('typeorm-event-sourcing.schema'))`,
    `CREATE SEQUENCE IF NOT EXISTS ${sequence}`,
    `CREATE TABLE IF NOT EXISTS ${outbox} (
  id bigserial PRIMARY KEY,
  events_table text NOT NULL,
  event_id bigint NOT NULL,
  event_position bigint NOT NULL,
  event_type text NOT NULL,
  reactor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
    // A random key per row makes every job id new, even when positions repeat after a restore.
    `ALTER TABLE ${outbox} ADD COLUMN IF NOT EXISTS job_key uuid NOT NULL DEFAULT gen_random_uuid()`,
    // Set when the job is in the queue, for outboxes kept until their jobs complete.
    `ALTER TABLE ${outbox} ADD COLUMN IF NOT EXISTS enqueued_at timestamptz`,
    // Set by a relay for the rows it is handing over, instead of holding them locked in a
    // transaction across the call to the queue; past it, another relay may take them.
    `ALTER TABLE ${outbox} ADD COLUMN IF NOT EXISTS claimed_until timestamptz`,
    // Index names cannot be qualified: an index goes to its table's schema, and so does the
    // IF NOT EXISTS check, so each schema's outbox gets its own.
    `CREATE INDEX IF NOT EXISTS ${OUTBOX_TABLE}_created_at ON ${outbox} (created_at)`,
    `CREATE UNIQUE INDEX IF NOT EXISTS ${OUTBOX_TABLE}_job_key ON ${outbox} (job_key)`,
    `CREATE TABLE IF NOT EXISTS ${identity} (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id uuid NOT NULL DEFAULT gen_random_uuid()
)`,
    // The key reactor jobs are signed with: whoever can write to Redis cannot forge one.
    `ALTER TABLE ${identity} ADD COLUMN IF NOT EXISTS secret text NOT NULL DEFAULT (replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))`,
    `INSERT INTO ${identity} DEFAULT VALUES ON CONFLICT DO NOTHING`,
    // The checkpoint is a pair, (tx_id, position), never the position alone: see
    // docs/projections.md. Both are null until the projection's first batch.
    `CREATE TABLE IF NOT EXISTS ${projections} (
  name text PRIMARY KEY,
  tx_id bigint,
  position bigint,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_error jsonb,
  CHECK ((tx_id IS NULL) = (position IS NULL))
)`,
    `CREATE OR REPLACE FUNCTION ${refuse}() RETURNS trigger LANGUAGE plpgsql AS $fn$
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
    // A column default cannot say "the sequence next to this table": one declared on the entity
    // is the same text for every DataSource, and an unqualified name would follow the session's
    // search_path. The trigger knows its table's schema. A position already given (a data-only
    // restore) is kept, so restored events keep their global order.
    `CREATE OR REPLACE FUNCTION ${assignPosition}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF NEW."position" IS NULL THEN
    NEW."position" := nextval(quote_ident(TG_TABLE_SCHEMA) || '.${POSITION_SEQUENCE}');
  END IF;
  RETURN NEW;
END
$fn$`,
  ];
  for (const definition of definitions) {
    const table = tableSql(driver, definition.eventsMetadata);
    const literal = `'${table.replace(/'/g, "''")}'`;
    statements.push(`DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${POSITION_TRIGGER}' AND tgrelid = ${literal}::regclass) THEN
    CREATE TRIGGER ${POSITION_TRIGGER} BEFORE INSERT ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ${assignPosition}();
  END IF;
  -- Tables made by an earlier version drew position from a column default naming the sequence.
  IF EXISTS (SELECT 1 FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum
             WHERE adrelid = ${literal}::regclass AND attname = 'position') THEN
    ALTER TABLE ${table} ALTER COLUMN "position" DROP DEFAULT;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${TRIGGER}' AND tgrelid = ${literal}::regclass) THEN
    CREATE TRIGGER ${TRIGGER} BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ${refuse}();
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${TRUNCATE_TRIGGER}' AND tgrelid = ${literal}::regclass) THEN
    CREATE TRIGGER ${TRUNCATE_TRIGGER} BEFORE TRUNCATE ON ${table}
      FOR EACH STATEMENT EXECUTE FUNCTION ${refuse}();
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
      `DROP TRIGGER IF EXISTS ${POSITION_TRIGGER} ON ${tableSql(driver, definition.eventsMetadata)}`,
      `DROP TRIGGER IF EXISTS ${TRIGGER} ON ${tableSql(driver, definition.eventsMetadata)}`,
      `DROP TRIGGER IF EXISTS ${TRUNCATE_TRIGGER} ON ${tableSql(driver, definition.eventsMetadata)}`,
    ]),
    `DROP FUNCTION IF EXISTS ${libraryObject(driver, POSITION_FUNCTION)}()`,
    `DROP FUNCTION IF EXISTS ${libraryObject(driver, REFUSE_FUNCTION)}()`,
    `DROP TABLE IF EXISTS ${libraryObject(driver, OUTBOX_TABLE)}`,
    `DROP TABLE IF EXISTS ${libraryObject(driver, IDENTITY_TABLE)}`,
    `DROP TABLE IF EXISTS ${libraryObject(driver, PROJECTIONS_TABLE)}`,
    `DROP SEQUENCE IF EXISTS ${libraryObject(driver, POSITION_SEQUENCE)}`,
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
  /** Removes what `create` made (triggers, functions, sequence, outbox, identity and projections tables); the other tables are TypeORM's. */
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
