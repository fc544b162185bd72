import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { legacyEntities } from '../support/legacy-models';

/** CRUD models being moved to events (one with a baseline, one without), for `baseline` and `verify`. */
export const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: legacyEntities });
