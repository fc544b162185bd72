import { activateNewSubscription } from '../support/activated-subscription';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, EventSourcingError, type ReactorContext } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { freePort, waitFor } from '../support/processes';
import { SubscriptionActivated, subscriptionEntities } from '../support/subscription-model';

/**
 * Defect 4 of the hardening issue: a `rediss://` URL was read as host and port, so the library
 * spoke plain TCP to a TLS Redis (managed Redis services require TLS) and no job ever arrived.
 * Here a real Redis that listens only for TLS, with a self-signed CA and a password: rediss://
 * delivers and runs jobs, redis:// to the same port delivers nothing, and the certificate is
 * checked unless the URL says otherwise.
 */

const run = `${process.pid}-${Date.now()}`;
const password = randomBytes(12).toString('hex');
let dir: string;
let port: number;
let server: ChildProcess;
let ca: string;
let dataSource: DataSource;

const runs: number[] = [];
function Confirm(event: SubscriptionActivated, _ctx: ReactorContext) {
  runs.push(event.id);
}

async function openssl(...args: string[]): Promise<void> {
  await promisify(execFile)('openssl', args, { cwd: dir });
}

/** A CA and a certificate for 127.0.0.1 signed by it, made fresh for this run. */
async function certificates(): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', '-new', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=typeorm-es test CA');
  await openssl('req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.cnf');
  ca = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-tls-redis-'));
  await certificates();
  port = await freePort();
  // TLS only (--port 0), on the loopback interface, with a password; nothing kept on disk.
  server = spawn(
    'redis-server',
    [
      '--port', '0',
      '--tls-port', String(port),
      '--tls-cert-file', path.join(dir, 'server.crt'),
      '--tls-key-file', path.join(dir, 'server.key'),
      '--tls-ca-cert-file', path.join(dir, 'ca.crt'),
      '--tls-auth-clients', 'no',
      '--bind', '127.0.0.1',
      '--requirepass', password,
      '--save', '',
      '--appendonly', 'no',
      '--maxmemory-policy', 'noeviction',
      '--dir', dir,
    ],
    { stdio: 'ignore' },
  );
  await waitFor('the TLS Redis to answer', async () => {
    const client = new Redis({ host: '127.0.0.1', port, password, tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } finally {
      client.disconnect();
    }
  }, 10_000, 100);
  dataSource = await testDataSource(`defects_redis_url_${process.pid}`, subscriptionEntities);
}, 30_000);

afterAll(async () => {
  await dataSource?.destroy();
  if (server?.pid !== undefined && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    process.kill(server.pid, 'SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  runs.length = 0;
});

const activate = (stripeKey: string) => activateNewSubscription(dataSource, stripeKey);

async function outboxCount(): Promise<number> {
  const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM es_outbox');
  return count;
}

/** Attaches with a URL, keeping what reaches onError; closed by the caller. */
async function attach(url: string, name: string): Promise<{ es: EventSourcing; errors: unknown[] }> {
  const errors: unknown[] = [];
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Confirm }),
    queue: { connection: url, name, closeTimeout: 1000 },
    onError: (error) => errors.push(error),
  });
  return { es, errors };
}

/** A plain view of one queue on the TLS Redis, connected with the CA. */
async function tlsJobCount(name: string): Promise<number> {
  const client = new Redis({ host: '127.0.0.1', port, password, tls: { ca } });
  try {
    const keys = await client.keys(`bull:${name}:*`);
    return keys.filter((key) => /^bull:[^:]+:[0-9a-f-]{36}\.\d+\.Confirm\.[0-9a-f-]{36}$/.test(key)).length;
  } finally {
    client.disconnect();
  }
}

const notConfigWarning = (error: unknown) => !(error instanceof EventSourcingError && error.code === 'REDIS_CONFIG');

test.each([
  ['rediss:// with ?rejectUnauthorized=false', () => `rediss://:${password}@127.0.0.1:${port}?rejectUnauthorized=false`],
  ['rediss:// with the CA in ?ca=', () => `rediss://:${password}@127.0.0.1:${port}?ca=${encodeURIComponent(ca)}`],
])('%s: the job goes over TLS and the reactor runs once', async (_what, url) => {
  const name = `defects-redis-tls-${run}-${runs.length}-${Math.random().toString(36).slice(2, 8)}`;
  const { es, errors } = await attach(url(), name);
  try {
    const worker = es.worker({ relay: false });
    const event = await activate('sub_tls');
    await waitForReactors(es);
    await worker.close();

    expect(runs).toEqual([event.id]);
    const [job] = (await es.queue.getJobs(['completed'])).filter((candidate) => candidate.data.id === event.id);
    expect(await job.getState()).toBe('completed');
    expect(await tlsJobCount(name)).toBe(1);
    // Only the warning that this Redis keeps nothing on disk; no connection error.
    expect(errors.filter(notConfigWarning)).toEqual([]);
  } finally {
    await es.close();
  }
}, 20_000);

// A control (it passes without the fix too): the TLS port really refuses plain TCP, so the
// successes above are TLS's.
test('redis:// to the TLS port delivers nothing: the scheme decides', async () => {
  const name = `defects-redis-plain-${run}`;
  const { es } = await attach(`redis://:${password}@127.0.0.1:${port}`, name);
  try {
    await activate('sub_plain');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(runs).toEqual([]);
    expect(await tlsJobCount(name)).toBe(0);
    // Not handed over: the row waits for a relay that can reach Redis.
    expect(await outboxCount()).toBe(1);
  } finally {
    await es.close();
  }
  await dataSource.query('DELETE FROM es_outbox');
}, 20_000);

test('rediss:// checks the certificate by default: a self-signed CA the client does not trust is refused', async () => {
  const name = `defects-redis-untrusted-${run}`;
  const { es, errors } = await attach(`rediss://:${password}@127.0.0.1:${port}`, name);
  try {
    await activate('sub_untrusted');
    await waitFor('a certificate error', async () => errors.some((error) => /certificate/i.test(String((error as Error)?.message))), 10_000, 50);
    expect(runs).toEqual([]);
    expect(await tlsJobCount(name)).toBe(0);
    expect(await outboxCount()).toBe(1);
  } finally {
    await es.close();
  }
  await dataSource.query('DELETE FROM es_outbox');
}, 20_000);
