// #region imports
import 'reflect-metadata';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { ensureServices } from '../../scripts/ensure-services';
import { dispatcher } from './dispatcher';
import { allEntities } from './entities';
// #endregion imports

/** The demo's own database on the server DATABASE_URL names, created on first run. */
async function demoDatabaseUrl(serverUrl: string): Promise<string> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', ['es_demo']);
    if (!rowCount) await client.query('CREATE DATABASE es_demo').catch((error: { code?: string }) => {
      if (error.code !== '42P04') throw error; // created meanwhile by another demo process
    });
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = '/es_demo';
  return url.toString();
}

/** The demo's DataSource with EventSourcing attached: the demo and its worker share it. */
export async function demoEventSourcing(): Promise<{ dataSource: DataSource; es: EventSourcing }> {
  const { databaseUrl, redisUrl } = ensureServices();
  const url = await demoDatabaseUrl(databaseUrl);
  // #region attach
  const dataSource = new DataSource({ type: 'postgres', url, entities: allEntities, synchronize: true });
  await dataSource.initialize();
  // synchronize: true also makes attach create the library's sequence, outbox and triggers.
  // An explicit queue name belongs to one database: a second database attaching under it is
  // refused. Leave `name` out and each database gets a queue of its own.
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: redisUrl, name: 'typeorm-es-demo' } });
  // #endregion attach
  return { dataSource, es };
}
