import type { MigrationInterface, QueryRunner } from 'typeorm';
import { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { dropSchemaStatements, schemaStatements } from './event-sourcing-schema';

/**
 * A ready TypeORM migration creating what the library needs besides the tables that
 * `migration:generate` writes: the shared position sequence and the append-only triggers of
 * every events table the DataSource knows. List it in `migrations` after the migration that
 * creates the events tables; it is idempotent, so run it again (copy it under a later timestamp)
 * when you add an aggregate.
 *
 * @example
 * ```ts
 * new DataSource({ ..., migrations: [InitialSchema1764000000000, EventSourcingSchema1764115200000] });
 * ```
 */
export class EventSourcingSchema1764115200000 implements MigrationInterface {
  name = 'EventSourcingSchema1764115200000';

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
}
