import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { allEntities } from '../../examples/subscriptions/entities';

/**
 * A DataSource made by an async factory (reading a secret first, say), exported as a Promise,
 * twice: as the default export and by name. It is one DataSource, and no eventSourcing export.
 */
const created = (async () => new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: allEntities }))();
export default created;
export const dataSource = created;
