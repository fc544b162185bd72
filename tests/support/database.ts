import 'reflect-metadata';
import { Client } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';

function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

/** A URL to a database of its own, created empty (dropped first if a previous run left it). */
export async function freshDatabase(name: string): Promise<string> {
  const database = `es_test_${name}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${database}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/** An initialized DataSource on a fresh database, schema synchronized from the given entities. */
export async function testDataSource(
  name: string,
  entities: DataSourceOptions['entities'],
  extra: Partial<DataSourceOptions> = {},
): Promise<DataSource> {
  const url = await freshDatabase(name);
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    entities,
    synchronize: true,
    logging: false,
    ...extra,
  } as DataSourceOptions);
  await dataSource.initialize();
  return dataSource;
}
