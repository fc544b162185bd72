import { attachedTo } from '../event-sourcing';
import type { EventSourcing } from '../event-sourcing';
import { ALLOW_TRUNCATE_SETTING, libraryObject, OUTBOX_TABLE, PROJECTIONS_TABLE } from '../schema/event-sourcing-schema';
import { tableSql } from '../schema/table-sql';

/**
 * Empties every aggregate table, every events table, the outbox and the projections' checkpoints
 * of the attached DataSource (TRUNCATE ... RESTART IDENTITY CASCADE), for cleanup between test
 * cases, so a projection starts again from the first event. Read models are yours to empty.
 * Never in production.
 * Events tables refuse TRUNCATE; this helper lets it through with the `typeorm_es.allow_truncate`
 * setting, for its own transaction only.
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
  const tables = registry.definitions.flatMap((definition) => [tableSql(driver, definition.eventsMetadata), tableSql(driver, definition.metadata)]);
  // Events tables refuse TRUNCATE unless the transaction says it is a test helper's.
  await dataSource.transaction(async (manager) => {
    await manager.query(`SET LOCAL ${ALLOW_TRUNCATE_SETTING} = on`);
    await manager.query(`TRUNCATE ${[...tables, libraryObject(driver, OUTBOX_TABLE), libraryObject(driver, PROJECTIONS_TABLE)].join(', ')} RESTART IDENTITY CASCADE`);
  });
}
