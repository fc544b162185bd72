// #region imports
import { DataSource } from 'typeorm';
import { eventSourcingMigration } from 'typeorm-event-sourcing';
import { InitialSchema1764000000000 } from '../subscriptions/migrations/1764000000000-initial-schema';
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
    ],
  });
  // #endregion data-source
}
