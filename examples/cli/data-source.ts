// #region imports
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import type { EventSourcingOptions } from 'typeorm-event-sourcing';
import { dispatcher } from '../subscriptions/dispatcher';
import { allEntities } from '../subscriptions/entities';
// #endregion imports

// #region data-source
// The module `typeorm-es -d` loads (compiled: -d dist/data-source.js), the same one TypeORM's
// own CLI takes: exactly one DataSource export.
export const dataSource = new DataSource({
  type: 'postgres',
  url: process.env.DATABASE_URL,
  entities: allEntities,
});

// What EventSourcing.attach gets: without a queue, worker, relay and the job parts of trace
// and stats have nothing to work with.
export const eventSourcing: EventSourcingOptions = {
  dispatcher,
  queue: { connection: process.env.REDIS_URL },
};
// #endregion data-source
