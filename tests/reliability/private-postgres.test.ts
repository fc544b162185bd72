import { Client } from 'pg';
import { PrivatePostgres } from '../support/private-postgres';

/** Runs one query on a new connection, closed afterwards. */
async function query<T = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

let pg: PrivatePostgres;

beforeAll(async () => {
  pg = await PrivatePostgres.create();
  await pg.start();
}, 120_000);

afterAll(async () => {
  await pg?.dispose();
});

test('a started instance answers on its own port', async () => {
  expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
  expect(await query(pg.url, 'SELECT current_setting($1) AS port', ['port'])).toEqual([{ port: String(pg.port) }]);
});

test('stopped, it refuses connections; restarted, it serves the data written before a fast stop', async () => {
  await query(pg.url, 'CREATE TABLE kept (id int PRIMARY KEY)');
  await query(pg.url, 'INSERT INTO kept VALUES (1), (2)');

  await pg.stop();
  await expect(query(pg.url, 'SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

  await pg.start();
  expect(await query(pg.url, 'SELECT id FROM kept ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
});

test('an immediate stop (a crash) keeps committed rows: the WAL replays them', async () => {
  await query(pg.url, 'CREATE TABLE crashed (id int PRIMARY KEY)');
  await query(pg.url, 'INSERT INTO crashed SELECT generate_series(1, 1000)');

  await pg.restart('immediate');
  expect(await query(pg.url, 'SELECT count(*)::int AS count FROM crashed')).toEqual([{ count: 1000 }]);
});

test('restart() leaves a connection held across it broken, and new ones working', async () => {
  const held = new Client({ connectionString: pg.url });
  held.on('error', () => undefined); // the server ends it while the test waits
  await held.connect();
  try {
    await pg.restart();
    await expect(held.query('SELECT 1')).rejects.toThrow();
    expect(await query(pg.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  } finally {
    await held.end().catch(() => undefined);
  }
});
