import { Client } from 'pg';
import { EventSourcingError } from '../errors/event-sourcing-error';
import { assertObjectArgument, UsageError } from '../errors/usage-error';

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * A PostgreSQL URL the role may create databases from (its database is only connected to, never
   * written). TLS parameters in it are honoured.
   * @defaultValue `process.env.DATABASE_URL`
   */
  url?: string;
  /**
   * The database name. Each jest worker runs its files one after another, so one database per
   * worker is enough; two suites running at once on the same server need different names.
   * @defaultValue `<database of url>_test_<JEST_WORKER_ID>` (worker 1 outside jest)
   */
  name?: string;
}

/** A database of a test file's own, from {@link createTestDatabase}. */
export interface TestDatabase {
  /** Its name. */
  readonly name: string;
  /** The URL to give the test DataSource: `url` with this database. */
  readonly url: string;
  /** Drops it, closing whatever connections are still open to it. */
  drop(): Promise<void>;
}

// PostgreSQL truncates longer names silently, so two long names could end up one database.
const MAX_NAME_BYTES = 63;
// pg decodes the database of a URL with decodeURI, which leaves these escaped.
const URL_RESERVED = ';/?:@&=+$,#';

/**
 * Creates an empty database for the running jest worker (dropping what an earlier run left under
 * that name), so parallel test files never share tables, and through the default queue name
 * (derived from the database) never share a reactor queue either. Bad options raise `UsageError`;
 * a server it cannot reach raises `EventSourcingError` with code `TEST_DATABASE`, naming the host
 * (never the password).
 *
 * @example
 * ```ts
 * let database: TestDatabase;
 * beforeAll(async () => {
 *   database = await createTestDatabase();
 *   dataSource = await new DataSource({ type: 'postgres', url: database.url, entities, synchronize: true }).initialize();
 * });
 * afterAll(async () => {
 *   await dataSource.destroy();
 *   await database.drop();
 * });
 * ```
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const subject = 'createTestDatabase';
  assertObjectArgument(subject, 'options', options);
  const serverUrl = options.url ?? process.env.DATABASE_URL;
  if (typeof serverUrl !== 'string' || serverUrl === '') {
    throw new UsageError(subject, 'url', 'is required: pass { url } or set DATABASE_URL to a PostgreSQL server the tests may create databases on');
  }
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw new UsageError(subject, 'url', 'is not a URL (expected postgres://user@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new UsageError(subject, 'url', `has scheme '${url.protocol}' (expected postgres: or postgresql:)`);
  }
  const base = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const name = options.name ?? `${base}_test_${process.env.JEST_WORKER_ID ?? '1'}`;
  if (typeof name !== 'string' || name === '' || name.includes('\0')) throw new UsageError(subject, 'name', 'must be a non-empty string without NUL');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new UsageError(subject, 'name', `'${name}' is longer than PostgreSQL's ${MAX_NAME_BYTES} bytes`);
  }
  const unsafe = [...name].find((char) => URL_RESERVED.includes(char));
  if (unsafe !== undefined) {
    throw new UsageError(subject, 'name', `'${name}' contains '${unsafe}', which a connection URL cannot carry (pg reads it back escaped)`);
  }
  if (name === base) throw new UsageError(subject, 'name', `'${name}' is the database of url, which it would drop`);
  await onServer(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  });
  const own = new URL(serverUrl);
  own.pathname = `/${encodeURIComponent(name)}`;
  return {
    name,
    url: own.toString(),
    drop: () => onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`)),
  };
}

async function onServer(url: string, work: (client: Client) => Promise<unknown>): Promise<void> {
  const client = new Client({ connectionString: url });
  try {
    await client.connect();
  } catch (error) {
    const { host } = new URL(url); // never the password
    throw new EventSourcingError('TEST_DATABASE', `createTestDatabase: cannot connect to PostgreSQL at ${host}: ${(error as Error).message}`, { cause: error });
  }
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
