import type { MigrationInterface, QueryRunner } from 'typeorm';
import { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { dropSchemaStatements, schemaStatements } from './event-sourcing-schema';

/** A TypeORM migration class, as `migrations: [...]` takes it. */
export type MigrationClass = new () => MigrationInterface;

/**
 * A ready TypeORM migration creating what the library needs besides the tables that
 * `migration:generate` writes: the shared position sequence and the append-only trigger of every
 * events table the DataSource knows. TypeORM orders migrations by the timestamp at the end of
 * their name, so give one later than the migration that creates your events tables. Its
 * statements are idempotent: add another one, with a later timestamp, when you add an aggregate.
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
    throw new RangeError(`eventSourcingMigration needs a 13-digit millisecond timestamp, got ${timestamp}`);
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
