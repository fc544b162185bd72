import 'reflect-metadata';
import { allEntities } from '../../examples/subscriptions/entities';

/** Entities but no DataSource: a common mistake, the file that lists them instead of the one that uses them. */
export const entities = allEntities;
export const dataSourceOptions = { type: 'postgres', url: process.env.DATABASE_URL, entities: allEntities };
