import { UsageError } from '../errors/usage-error';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { dropSchemaStatements, schemaStatements } from './event-sourcing-schema';

/** A TypeORM migration class, as `migrations: [...]` takes it. */
export type MigrationClass = new () => MigrationInterface;

/**
 * A ready TypeORM migration creating what the library needs besides the aggregate and events
 * tables that `migration:generate` writes (the same statements as `es.schema.sql()`):
 *
 * - the sequence `es_event_position`, which every events table's `position` column draws from;
 * - the table `es_outbox`, which holds async reactor jobs between the event's transaction and the
 *   queue (with its `job_key`, `enqueued_at` and `claimed_until` columns and indexes);
 * - the one-row table `es_identity`: this database's random id (the first part of every reactor
 *   job id) and `secret`, the key reactor jobs are signed with;
 * - the table `es_projections`: each projection's checkpoint and last error;
 * - on every events table the DataSource knows, the trigger `es_position` (assigns `position`
 *   from the sequence), the trigger `es_append_only` (refuses UPDATE and DELETE) and the
 *   statement trigger `es_no_truncate` (refuses TRUNCATE unless `typeorm_es.allow_truncate` is on
 *   in the transaction).
 *
 * All of it goes to the `schema` of the DataSource running the migration, when it names one.
 * `down` drops the triggers, their functions, the outbox, identity and projections tables and the
 * sequence.
 *
 * TypeORM orders migrations by the timestamp at the end of their name, so give one later than the
 * migration that creates your events tables. Its statements are idempotent (they also add columns
 * and triggers missing from a schema made by an earlier version): add another one, with a later
 * timestamp, when you add an aggregate. See docs/schema.md.
 *
 * @param timestamp - milliseconds since 1970, as in TypeORM's generated migration names
 *
 * @example
 * ```ts
 * new DataSource({
 *   // ...
 *   migrations: [InitialSchema1764000000000, eventSourcingMigration(1764000000001)],
 * });
 * ```
 */
export function eventSourcingMigration(timestamp: number): MigrationClass {
  if (!Number.isSafeInteger(timestamp) || String(timestamp).length !== 13) {
    throw new UsageError('eventSourcingMigration', 'timestamp', `must be a 13-digit millisecond timestamp, got ${timestamp}`);
  }
  const name = `EventSourcingSchema${timestamp}`;
  const migration = class implements MigrationInterface {
    name = name;

    async up(queryRunner: QueryRunner): Promise<void> {
      const registry = new EventSourcingRegistry(queryRunner.connection);
      for (const statement of schemaStatements(queryRunner.connection.driver, registry.definitions)) {
        await queryRunner.query(statement);
      }
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      const registry = new EventSourcingRegistry(queryRunner.connection);
      for (const statement of dropSchemaStatements(queryRunner.connection.driver, registry.definitions)) {
        await queryRunner.query(statement);
      }
    }
  };
  Object.defineProperty(migration, 'name', { value: name });
  return migration;
}
