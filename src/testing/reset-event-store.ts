import { attachedTo } from '../event-sourcing';
import type { EventSourcing } from '../event-sourcing';
import { OUTBOX_TABLE } from '../schema/event-sourcing-schema';

/**
 * Empties every aggregate table, every events table and the outbox of the attached DataSource
 * (TRUNCATE ... RESTART IDENTITY CASCADE), for cleanup between test cases. Never in production.
 *
 * @example
 * ```ts
 * afterEach(() => resetEventStore());
 * ```
 */
export async function resetEventStore(es?: EventSourcing): Promise<void> {
  const { internals } = attachedTo(es?.dataSource.manager);
  const { dataSource, registry } = internals;
  const driver = dataSource.driver;
  const qualified = (metadata: { schema?: string; tableName: string }) => (metadata.schema ? `${driver.escape(metadata.schema)}.` : '') + driver.escape(metadata.tableName);
  const tables = registry.definitions.flatMap((definition) => [qualified(definition.eventsMetadata), qualified(definition.metadata)]);
  await dataSource.query(`TRUNCATE ${[...tables, OUTBOX_TABLE].join(', ')} RESTART IDENTITY CASCADE`);
}
