import { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, Projection, UsageError } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { PrivatePostgres } from '../support/private-postgres';
import { PrivateRedis } from '../support/processes';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionActivated, SubscriptionCreated, subscriptionEntities } from '../support/subscription-model';

/**
 * es.health(): each part's status and figures, thresholds as options, and an answer (never a
 * hang, never a throw) while Redis or PostgreSQL is away. A PostgreSQL and a Redis of its own,
 * to stop.
 */

let pg: PrivatePostgres;
let redis: PrivateRedis;
let dataSource: DataSource;
let es: EventSourcing;

function AlwaysFails(): never {
  throw new Error('the mail server said no');
}

beforeAll(async () => {
  [pg, redis] = await Promise.all([PrivatePostgres.create(), PrivateRedis.create()]);
  await Promise.all([pg.start(), redis.start()]);
  dataSource = new DataSource({ type: 'postgres', url: pg.url, entities: subscriptionEntities, synchronize: true, logging: false });
  await dataSource.initialize();
  es = await EventSourcing.attach(dataSource, {
    createSchema: true,
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: AlwaysFails, attempts: 1 }),
    queue: { connection: redis.url, name: 'health' },
    // Errors of the queue while Redis is away are expected here.
    onError: () => undefined,
  });
}, 60_000);

afterAll(async () => {
  await es?.close();
  if (dataSource?.isInitialized) await dataSource.destroy();
  await Promise.all([redis?.dispose(), pg?.dispose()]);
}, 30_000);

test('all parts ok: figures for each, no projections part while there are none', async () => {
  const health = await es.health();
  expect(health).toEqual({
    status: 'ok',
    database: { status: 'ok', latencyMs: expect.any(Number) },
    queue: { status: 'ok', configured: true, latencyMs: expect.any(Number) },
    outbox: { status: 'ok', pending: 0, oldestAgeMs: null },
    failedJobs: { status: 'ok', count: 0 },
  });
});

test('an outbox row waiting longer than outboxMaxAgeMs makes the outbox, and the whole, degraded', async () => {
  await dataSource.query(
    `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, created_at)
     VALUES ('subscription_events', 999, 999, 'Subscription.Activated', 'AlwaysFails', clock_timestamp() - interval '120 seconds')`,
  );
  try {
    const health = await es.health();
    expect(health.status).toBe('degraded');
    expect(health.outbox).toEqual({ status: 'degraded', pending: 1, oldestAgeMs: expect.any(Number), reason: expect.stringMatching(/^the oldest outbox row waits for \d+ ms \(more than 30000\)/) });
    expect(health.outbox.oldestAgeMs).toBeGreaterThanOrEqual(120_000);
    expect((await es.health({ outboxMaxAgeMs: 600_000 })).outbox.status).toBe('ok');
  } finally {
    await dataSource.query('DELETE FROM es_outbox WHERE event_id = 999');
  }
});

test('a reactor job failed for good counts as failed, degraded above maxFailedJobs', async () => {
  const created = await es.append(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }));
  const worker = es.worker();
  try {
    await waitForReactors(es, { allowFailures: true, timeout: 15_000 });
  } finally {
    await worker.close();
  }
  const health = await es.health();
  expect(health.failedJobs).toEqual({ status: 'degraded', count: 1, reason: '1 async reactor job failed for good (more than 0)' });
  expect(health.status).toBe('degraded');
  expect((await es.health({ maxFailedJobs: 1 })).failedJobs).toEqual({ status: 'ok', count: 1 });
  await es.queue.clean(0, 100, 'failed');
});

test('projections: a failed batch or an old lag is degraded, each projection named', async () => {
  let fail = true;
  const projection = new Projection('health-report').on(SubscriptionCreated, () => {
    if (fail) throw new Error('report table missing');
  });
  await rejectionOf(es.projections.catchUp(projection));
  let health = await es.health();
  expect(health.projections).toEqual([
    { name: 'health-report', status: 'degraded', lagEvents: expect.any(Number), lagSeconds: expect.any(Number), reason: expect.stringContaining('its last batch failed: ') },
  ]);
  expect(health.projections![0].reason).toContain('report table missing');
  fail = false;
  await es.projections.catchUp(projection);
  health = await es.health({ projectionMaxLagSeconds: 0 });
  expect(health.projections).toEqual([{ name: 'health-report', status: 'ok', lagEvents: 0, lagSeconds: 0 }]);
  await es.append(SubscriptionCreated.build({ userId: 2 }));
  await new Promise((resolve) => setTimeout(resolve, 1100));
  health = await es.health({ projectionMaxLagSeconds: 0.5 });
  expect(health.projections).toEqual([
    { name: 'health-report', status: 'degraded', lagEvents: 1, lagSeconds: expect.any(Number), reason: expect.stringMatching(/^its oldest unhandled event is \d+ s old \(more than 0\.5\)$/) },
  ]);
  await es.projections.catchUp(projection);
});

test('Redis stopped: queue and failed jobs down, the whole degraded (events are still written), answered within the timeout', async () => {
  await redis.stop();
  try {
    const health = await es.health({ timeout: 500 });
    expect(health.status).toBe('degraded');
    expect(health.database.status).toBe('ok');
    expect(health.queue).toEqual({ status: 'down', configured: true, latencyMs: null, reason: 'the queue check did not finish within 500 ms' });
    expect(health.failedJobs).toEqual({ status: 'down', count: null, reason: 'the queue cannot be reached' });
    // Writes go on meanwhile: the job waits in the outbox.
    const written = await es.append(SubscriptionCreated.build({ userId: 3 }));
    expect(written.id).toBeGreaterThan(0);
  } finally {
    await redis.start();
  }
});

test('PostgreSQL stopped: the database, outbox and projections parts down, the whole down, never a throw', async () => {
  await pg.stop('immediate');
  try {
    const health = await es.health({ timeout: 1000 });
    expect(health.status).toBe('down');
    expect(health.database).toEqual({ status: 'down', latencyMs: null, reason: expect.any(String) });
    expect(health.outbox).toEqual({ status: 'down', pending: null, oldestAgeMs: null, reason: expect.any(String) });
    expect(health.projections).toBeUndefined();
  } finally {
    await pg.start();
  }
  // Back: the pool reconnects.
  let health = await es.health();
  for (let tries = 0; tries < 50 && health.database.status !== 'ok'; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    health = await es.health();
  }
  expect(health.database.status).toBe('ok');
});

test('thresholds that are not numbers are refused by name', async () => {
  for (const [options, message] of [
    [{ timeout: 0 }, 'es.health: timeout must be a positive number, got 0'],
    [{ outboxMaxAgeMs: -1 }, 'es.health: outboxMaxAgeMs must be a non-negative number, got -1'],
    [{ maxFailedJobs: 'many' }, 'es.health: maxFailedJobs must be a non-negative number, got many'],
  ] as const) {
    const error = await rejectionOf(es.health(options as never));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(message);
  }
});
