import Redis from 'ioredis';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, type OutboxRelay, type RelayOptions } from 'typeorm-event-sourcing';
import { claimOutboxRows } from '../../src/reactors/outbox';
import { recordFigure } from '../support/figures';
import { redisPid } from '../support/outages';
import { PrivatePostgres } from '../support/private-postgres';
import { PrivateRedis, waitFor } from '../support/processes';
import { SubscriptionActivated, subscriptionEntities } from '../support/subscription-model';

/**
 * Issue 12: the relay claimed outbox rows with FOR UPDATE SKIP LOCKED, added their jobs to the
 * queue and deleted the rows in ONE transaction, so a slow or frozen Redis kept a transaction
 * (and its xid) open for up to the add's timeout, holding back every projection reading below
 * the snapshot's xmin. Now a relay claims rows with a lease (`claimed_until`) in one committed
 * statement, adds outside any transaction, then deletes or releases.
 *
 * A PostgreSQL of its own: xmin is cluster-wide, and another test file's transaction on the shared
 * server would hold it back too. A Redis of its own, to freeze (SIGSTOP) while the relay adds.
 */

let pg: PrivatePostgres;
let redis: PrivateRedis;
let redisProcess: number;
let frozen = false;
let main: DataSource;
/** A connection of the test's own, standing for a projection reading the horizon. */
let observer: Client;
const opened: { es: EventSourcing; dataSource: DataSource }[] = [];
const errors: unknown[] = [];

function Confirm() {}
const dispatcher = () => new Dispatcher().on(SubscriptionActivated, { async: Confirm });

beforeAll(async () => {
  [pg, redis] = await Promise.all([PrivatePostgres.create(), PrivateRedis.create({ persistence: true })]);
  await Promise.all([pg.start(), redis.start()]);
  redisProcess = await redisPid(redis.url);
  main = new DataSource({ type: 'postgres', url: pg.url, entities: subscriptionEntities, synchronize: true, logging: false });
  await main.initialize();
  await (await EventSourcing.attach(main, { createSchema: true })).close();
  observer = new Client({ connectionString: pg.url });
  await observer.connect();
}, 60_000);

afterEach(async () => {
  thaw();
  for (const { es, dataSource } of opened.splice(0)) {
    await es.close();
    await dataSource.destroy();
  }
  await main.query('DELETE FROM es_outbox');
  expect(errors.splice(0)).toEqual([]);
});

afterAll(async () => {
  thaw();
  await observer?.end();
  if (main?.isInitialized) await main.destroy();
  await Promise.all([redis?.dispose(), pg?.dispose()]);
}, 30_000);

function freeze(): void {
  process.kill(redisProcess, 'SIGSTOP');
  frozen = true;
}

function thaw(): void {
  if (frozen) process.kill(redisProcess, 'SIGCONT');
  frozen = false;
}

/** One process attached to the database: a DataSource of its own (its pool named `name`) and a queue (its own unless named). */
async function attach(name: string, queue: { name?: string; keepOutboxUntil?: 'enqueued' | 'completed' } = {}): Promise<EventSourcing> {
  const dataSource = new DataSource({ type: 'postgres', url: pg.url, entities: subscriptionEntities, synchronize: false, logging: false, applicationName: name });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: dispatcher(),
    createSchema: false,
    queue: { connection: redis.url, name: `relay-tx-${name}-${process.pid}-${Date.now()}`, ...queue },
    onError: (error) => errors.push(error),
  });
  opened.push({ es, dataSource });
  return es;
}

/** A relay whose loop is stopped before its first run: the test drives it with relayOnce/recheckOnce. */
async function handDriven(es: EventSourcing, options: RelayOptions = {}): Promise<OutboxRelay> {
  const relay = es.relay(options);
  await relay.close();
  return relay;
}

/** `count` outbox rows a minute old, as a crash between COMMIT and the hand-over leaves them. */
async function backlog(count: number, { enqueuedAgo }: { enqueuedAgo?: string } = {}): Promise<void> {
  await main.query(
    `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, created_at, enqueued_at)
     SELECT 'subscription_events', g, g, 'Subscription.Activated', 'Confirm', clock_timestamp() - interval '1 minute', clock_timestamp() - $2::interval
     FROM generate_series(1, $1::int) AS g`,
    [count, enqueuedAgo ?? null],
  );
}

async function outbox(): Promise<{ rows: number; claimed: number; enqueued: number }> {
  const [row] = await main.query(
    `SELECT count(*)::int AS rows, count(claimed_until)::int AS claimed, count(enqueued_at)::int AS enqueued FROM es_outbox`,
  );
  return row;
}

/**
 * While a relay waits for the queue: no backend of the database is in a transaction (the relay's
 * connections idle, the one that claimed included, without an xid), and a projection's horizon,
 * the xmin of a fresh snapshot, is past a transaction committed now.
 */
async function expectNothingHeldOpen(pool: string): Promise<void> {
  const { rows: activity } = await observer.query(
    `SELECT application_name AS pool, state, backend_xid::text AS xid, query FROM pg_stat_activity
     WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
  );
  const relayConnections = activity.filter((backend) => backend.pool === pool);
  expect(relayConnections.some((backend) => /es_outbox/.test(backend.query))).toBe(true);
  expect(activity.filter((backend) => backend.state !== 'idle' || backend.xid !== null)).toEqual([]);

  await observer.query('BEGIN');
  const { rows: [{ xid }] } = await observer.query('SELECT txid_current()::text AS xid');
  await observer.query('COMMIT');
  const { rows: [{ xmin }] } = await observer.query('SELECT txid_snapshot_xmin(txid_current_snapshot())::text AS xmin');
  expect(BigInt(xmin)).toBeGreaterThan(BigInt(xid));
}

/** Settles with what a promise gave, and says meanwhile whether it has. */
function watch<T>(promise: Promise<T>) {
  const state: { done: boolean; outcome?: Promise<{ value?: T; error?: any }> } = { done: false };
  state.outcome = promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
  void state.outcome.finally(() => (state.done = true));
  return state as { done: boolean; outcome: Promise<{ value?: T; error?: any }> };
}

async function waitingJobs(es: EventSourcing): Promise<number> {
  return es.queue.getWaitingCount();
}

test('while the add hangs on a frozen Redis, the relay holds no transaction and the xmin horizon moves on; the add given up, the claim is released and the next batch delivers every row', async () => {
  const es = await attach('relay-frozen-add');
  // A lease of 8 s: the relay gives up on the queue after 2 s (a quarter), well inside it.
  const relay = await handDriven(es, { grace: 0, lease: 8000 });
  await backlog(30);

  freeze();
  const started = performance.now();
  const relaying = watch(relay.relayOnce());
  await waitFor('the relay to claim the backlog', async () => (await outbox()).claimed === 30, 5000, 10);

  await expectNothingHeldOpen('relay-frozen-add');
  expect(relaying.done).toBe(false);

  const { error } = await relaying.outcome;
  const stuckMs = performance.now() - started;
  expect(error).toMatchObject({ code: 'TIMEOUT', message: 'relaying outbox rows to the queue did not finish within 2000 ms' });
  expect(stuckMs).toBeGreaterThanOrEqual(1900);
  // Given back at once: the next relay need not wait 8 s for the lease.
  expect(await outbox()).toEqual({ rows: 30, claimed: 0, enqueued: 0 });

  thaw();
  expect(await relay.relayOnce()).toBe(30);
  // The first add reached Redis once it woke up; the second added nothing twice.
  expect(await waitingJobs(es)).toBe(30);
  expect(await outbox()).toEqual({ rows: 0, claimed: 0, enqueued: 0 });
  recordFigure('relay transactions open while the queue hung', 0);
});

test("keepOutboxUntil 'completed': recheckOnce reads job states and adds lost jobs with no transaction open, then marks the rows enqueued again", async () => {
  const es = await attach('relay-frozen-recheck', { keepOutboxUntil: 'completed' });
  const relay = await handDriven(es, { grace: 0, recheckAfter: 1000, lease: 8000 });
  // Enqueued ten minutes ago by the hand-over, then forgotten by Redis: none of them is in the queue.
  await backlog(20, { enqueuedAgo: '10 minutes' });

  freeze();
  const rechecking = watch(relay.recheckOnce());
  await waitFor('the relay to claim the rows to recheck', async () => (await outbox()).claimed === 20, 5000, 10);
  await expectNothingHeldOpen('relay-frozen-recheck');
  expect(rechecking.done).toBe(false);
  thaw();

  expect(await rechecking.outcome).toEqual({ value: 20 });
  expect(await waitingJobs(es)).toBe(20);
  // Kept until the jobs complete, looked at again only after another recheckAfter, no claim left.
  const [{ fresh }] = await main.query(`SELECT count(*)::int AS fresh FROM es_outbox WHERE enqueued_at > clock_timestamp() - interval '1 minute'`);
  expect(fresh).toBe(20);
  expect(await outbox()).toEqual({ rows: 20, claimed: 0, enqueued: 20 });
  expect(await relay.recheckOnce()).toBe(0);
});

test('two relays on one backlog of 300 rows hand every row to the queue exactly once', async () => {
  const name = `relay-tx-pair-${process.pid}-${Date.now()}`;
  const [first, second] = [await attach('relay-pair-a', { name }), await attach('relay-pair-b', { name })];
  const options = { grace: 0, batchSize: 20 };
  const relays = [await handDriven(first, options), await handDriven(second, options)];
  await backlog(300);

  const handed = await Promise.all(
    relays.map(async (relay) => {
      let total = 0;
      for (let batches = 0; batches < 100; batches += 1) {
        const count = await relay.relayOnce();
        if (count === 0) break;
        total += count;
      }
      return total;
    }),
  );

  // Both took part, and no row went to the queue from both.
  expect(handed[0]).toBeGreaterThan(0);
  expect(handed[1]).toBeGreaterThan(0);
  expect(handed[0] + handed[1]).toBe(300);
  expect(await waitingJobs(first)).toBe(300);
  expect(await duplicatedEvents(first.queue.name)).toBe(0);
  expect(await outbox()).toEqual({ rows: 0, claimed: 0, enqueued: 0 });
  recordFigure('outbox rows relayed by two relays at once', 300);
  recordFigure('rows handed to the queue by both relays', 0);
});

test('rows claimed by a relay that then died are left alone until the lease expires, then another relay delivers them', async () => {
  const es = await attach('relay-died');
  const survivor = await handDriven(es, { grace: 0 });
  await backlog(40);

  // What a relay does before it calls the queue; it dies there, leaving its claim.
  const claimedAt = performance.now();
  const dead = await claimOutboxRows(main.manager, { graceMs: 0, limit: 100, leaseMs: 1500 });
  expect(dead.rows).toHaveLength(40);

  expect(await survivor.relayOnce()).toBe(0);
  expect(await outbox()).toEqual({ rows: 40, claimed: 40, enqueued: 0 });

  let delivered = 0;
  await waitFor('the survivor to deliver the rows once the lease expired', async () => (delivered += await survivor.relayOnce()) === 40, 10_000, 100);
  expect(performance.now() - claimedAt).toBeGreaterThanOrEqual(1400);
  expect(await waitingJobs(es)).toBe(40);
  expect(await outbox()).toEqual({ rows: 0, claimed: 0, enqueued: 0 });
});

test('an outbox made before leases (no claimed_until) gains the column from the schema statements, and relaying works on it', async () => {
  await main.query('ALTER TABLE es_outbox DROP COLUMN claimed_until');
  const es = await attach('relay-upgrade');
  await es.schema.create();
  const [{ type }] = await main.query(
    `SELECT data_type AS type FROM information_schema.columns WHERE table_name = 'es_outbox' AND column_name = 'claimed_until'`,
  );
  expect(type).toBe('timestamp with time zone');

  const relay = await handDriven(es, { grace: 0 });
  await backlog(3);
  expect(await relay.relayOnce()).toBe(3);
  expect(await waitingJobs(es)).toBe(3);
});

test('a lease that is not a usable number of milliseconds is refused when the relay is made', async () => {
  const es = await attach('relay-lease-option');
  expect(() => es.relay({ lease: 50 })).toThrow('relay options: lease must be a number of milliseconds, at least 100, got 50');
  expect(() => es.relay({ lease: Number.NaN })).toThrow('relay options: lease must be a number of milliseconds, at least 100, got NaN');
});

/** BullMQ's 'duplicated' events of a queue: adds of a job id that existed already. */
async function duplicatedEvents(queueName: string): Promise<number> {
  const client = new Redis(redis.url);
  try {
    const entries = await client.xrange(`bull:${queueName}:events`, '-', '+');
    return entries.filter(([, fields]) => fields[1] === 'duplicated').length;
  } finally {
    client.disconnect();
  }
}
