// #region imports
import { DataSource } from 'typeorm';
import { eventSourcingMigration } from 'typeorm-event-sourcing';
import { InitialSchema1764000000000 } from '../subscriptions/migrations/1764000000000-initial-schema';
import { ProjectionOrderIndex1764000000002 } from '../subscriptions/migrations/1764000000002-projection-order-index';
import { entities } from '../subscriptions/model';
// #endregion imports

/** docs/schema.md: a production DataSource whose schema comes from migrations. */
export function migratedDataSource(url: string): DataSource {
  // #region data-source
  return new DataSource({
    type: 'postgres',
    url,
    entities,
    synchronize: false,
    migrations: [
      InitialSchema1764000000000, // written by `typeorm migration:generate`: the tables
      eventSourcingMigration(1764000000001), // the position sequence, outbox, identity and append-only triggers
      ProjectionOrderIndex1764000000002, // generated after an upgrade: a new index the entities declare
    ],
  });
  // #endregion data-source
}
