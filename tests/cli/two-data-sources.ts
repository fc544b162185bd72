import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { allEntities } from '../../examples/subscriptions/entities';

/** Two DataSources: the CLI cannot tell which one is meant, as TypeORM's CLI cannot. */
export const primary = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: allEntities });
export const replica = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: allEntities });
