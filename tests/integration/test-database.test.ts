import { Client } from 'pg';
import { EventSourcingError, UsageError } from 'typeorm-event-sourcing';
import { createTestDatabase } from 'typeorm-event-sourcing/testing';

/** createTestDatabase: one empty database per jest worker, dropped again; bad options named. */
async function databaseExists(name: string): Promise<boolean> {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

test('the default name is the URL database plus the jest worker id; it starts empty even after a crashed run', async () => {
  const first = await createTestDatabase();
  expect(first.name).toBe(`postgres_test_${process.env.JEST_WORKER_ID}`);
  const client = new Client({ connectionString: first.url });
  client.on('error', () => undefined); // terminated by the next createTestDatabase
  await client.connect();
  await client.query('CREATE TABLE left_over (id int)');
  // A run killed before drop() left the table and an open connection behind.
  const again = await createTestDatabase();
  await expect(client.query('SELECT 1')).rejects.toThrow();
  await client.end().catch(() => undefined);
  const fresh = new Client({ connectionString: again.url });
  await fresh.connect();
  try {
    expect((await fresh.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'left_over'`)).rows).toEqual([{ n: 0 }]);
  } finally {
    await fresh.end();
  }
  await again.drop();
  expect(await databaseExists(again.name)).toBe(false);
  await again.drop(); // twice is harmless
});

test('a name with quotes and spaces is one identifier, not SQL', async () => {
  const database = await createTestDatabase({ name: `es test "quoted" DROP DATABASE postgres --` });
  expect(await databaseExists(database.name)).toBe(true);
  expect(new URL(database.url).pathname).toBe(`/${encodeURIComponent(database.name)}`);
  const client = new Client({ connectionString: database.url });
  await client.connect();
  try {
    expect((await client.query('SELECT current_database() AS name')).rows).toEqual([{ name: database.name }]);
  } finally {
    await client.end();
  }
  await database.drop();
  expect(await databaseExists(database.name)).toBe(false);
  expect(await databaseExists('postgres')).toBe(true);
});

test.each([
  ['no URL anywhere', { url: '' }, 'createTestDatabase: url is required: pass { url } or set DATABASE_URL to a PostgreSQL server the tests may create databases on'],
  ['not a URL', { url: 'localhost:5432' }, 'createTestDatabase: url has scheme \'localhost:\' (expected postgres: or postgresql:)'],
  ['an unparsable URL', { url: '::' }, 'createTestDatabase: url is not a URL (expected postgres://user@host:port/database)'],
  ['a Redis URL', { url: 'redis://127.0.0.1:6379' }, "createTestDatabase: url has scheme 'redis:' (expected postgres: or postgresql:)"],
  ['a name PostgreSQL would truncate', { name: 'x'.repeat(64) }, `createTestDatabase: name '${'x'.repeat(64)}' is longer than PostgreSQL's 63 bytes`],
  ['a name with NUL', { name: 'a\0b' }, 'createTestDatabase: name must be a non-empty string without NUL'],
  ['the database of the URL itself', { name: 'postgres' }, "createTestDatabase: name 'postgres' is the database of url, which it would drop"],
  ['a name a URL cannot carry', { name: 'a;b' }, "createTestDatabase: name 'a;b' contains ';', which a connection URL cannot carry (pg reads it back escaped)"],
  ['null options', null, 'createTestDatabase: options must be an object'],
])('%s: UsageError, nothing created', async (_case, options, message) => {
  const error = await createTestDatabase(options as never).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(UsageError);
  expect((error as Error).message).toBe(message);
});

test('the password of the URL is in no error message', async () => {
  const url = new URL(process.env.DATABASE_URL!);
  url.password = 's3cret-pw';
  url.port = '1'; // nothing listens there
  const error = (await createTestDatabase({ url: url.toString() }).catch((caught: unknown) => caught)) as EventSourcingError;
  expect(error).toBeInstanceOf(EventSourcingError);
  expect(error.code).toBe('TEST_DATABASE');
  expect(error.message).toMatch(/^createTestDatabase: cannot connect to PostgreSQL at 127\.0\.0\.1:1: /);
  expect(`${error.message} ${error.stack}`).not.toContain('s3cret-pw');
});
