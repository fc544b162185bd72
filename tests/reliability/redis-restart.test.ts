import type { Queue } from 'bullmq';
import { EventSourcing, EventSourcingError, type ReactorQueueOptions } from '../../src';
import { OrderPlaced } from '../processes/model';
import { recordingDispatcher } from '../processes/reactor-runs';
import { recordFigure } from '../support/figures';
import { completedJobs, expectedPairs, HandStartedRedis, OutageDatabase, sleep } from '../support/outages';
import { disposeQueue, inspectQueue, jobCounts, onlyCompleted, PrivateRedis, uniqueQueueName, waitFor } from '../support/processes';

/**
 * Redis restarted while jobs wait in it: kept by the append-only file; lost without it (and the
 * library said so at attach); delivered anyway when outbox rows are kept until their jobs
 * complete. And a Redis that may evict keys is reported at attach.
 */

let db: OutageDatabase | undefined;
let redis: PrivateRedis | undefined;
let handStarted: HandStartedRedis | undefined;
let queue: Queue | undefined;
let es: EventSourcing | undefined;

afterEach(async () => {
  jest.restoreAllMocks();
  await es?.close();
  await redis?.start(); // a failed test may have left it stopped: clean the queue, then stop it
  await disposeQueue(queue);
  await redis?.dispose();
  await handStarted?.stop();
  await db?.close();
  es = undefined;
  redis = undefined;
  handStarted = undefined;
  queue = undefined;
  db = undefined;
});

/** Attaches to the test's database with a queue on `redisUrl`; errors nobody awaits are collected. */
async function attach(redisUrl: string, name: string, options: Partial<ReactorQueueOptions> = {}): Promise<{ es: EventSourcing; errors: unknown[] }> {
  const errors: unknown[] = [];
  const attached = await EventSourcing.attach(db!.dataSource, {
    dispatcher: recordingDispatcher(),
    createSchema: false,
    queue: { connection: redisUrl, name, attempts: 3, backoff: 200, closeTimeout: 2000, ...options, relay: { grace: 200, interval: 100, ...options.relay } },
    onError: (error) => errors.push(error),
  });
  return { es: attached, errors };
}

function configWarnings(errors: unknown[]): EventSourcingError[] {
  return errors.filter((error): error is EventSourcingError => error instanceof EventSourcingError && error.code === 'REDIS_CONFIG');
}

/** Ten orders placed with no worker running: twenty jobs left waiting in Redis. */
async function twentyWaitingJobs(): Promise<number[]> {
  for (let number = 0; number < 10; number += 1) await es!.append(OrderPlaced.build({ number }));
  await waitFor('20 waiting jobs', async () => (await jobCounts(queue!)).waiting === 20, 10_000);
  return db!.eventIds();
}

async function restartRedis(): Promise<void> {
  await redis!.stop();
  await redis!.start();
  recordFigure('outages injected', 1);
  recordFigure('server restarts', 1);
}

async function unsettledOutboxRows(): Promise<number> {
  const [{ count }] = await db!.dataSource.query(`SELECT count(*)::int AS count FROM es_outbox WHERE enqueued_at IS NULL`);
  return count;
}

test('with the append-only file, jobs waiting in Redis when it restarts run once afterwards', async () => {
  db = await OutageDatabase.create('redis_restart_aof');
  redis = await PrivateRedis.create({ persistence: true });
  await redis.start();
  const name = uniqueQueueName('restart-aof');
  queue = inspectQueue(name, redis.url);
  const attached = await attach(redis.url, name);
  es = attached.es;
  const eventIds = await twentyWaitingJobs();
  // Handed over: only Redis holds the jobs now.
  await waitFor('an empty outbox', async () => (await db!.outboxCount()) === 0, 5000);
  const waitingIds = (await queue.getJobs(['waiting'])).map((job) => job.id).sort();

  await restartRedis();
  expect(await jobCounts(queue)).toEqual({ ...onlyCompleted(0), waiting: 20 });

  es.worker();
  await waitFor('20 completed jobs', async () => (await jobCounts(queue!)).completed === 20, 20_000);
  expect(await db.runPairs()).toEqual(expectedPairs(eventIds));
  const jobs = await completedJobs(queue);
  expect(jobs.map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  expect(jobs.map((job) => job.id).sort()).toEqual(waitingIds);
  expect(jobs.every((job) => job.attemptsMade === 1)).toBe(true);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(20));
  expect(configWarnings(attached.errors)).toEqual([]);
  recordFigure('jobs lost', 20 - jobs.length);
}, 60_000);

test('without persistence, attach warns that waiting jobs would be lost, and a restart does lose them', async () => {
  db = await OutageDatabase.create('redis_restart_volatile');
  redis = await PrivateRedis.create({ persistence: false });
  await redis.start();
  const name = uniqueQueueName('restart-volatile');
  queue = inspectQueue(name, redis.url);
  const attached = await attach(redis.url, name);
  es = attached.es;

  const [warning] = await waitFor('a REDIS_CONFIG warning', async () => configWarnings(attached.errors).length > 0 && configWarnings(attached.errors), 5000);
  expect(configWarnings(attached.errors)).toHaveLength(1);
  expect(warning).toBeInstanceOf(EventSourcingError);
  expect(warning.message).toMatch(/appendonly no/);
  expect(warning.message).toMatch(/jobs waiting in Redis are lost if it restarts/);
  expect(warning.message).toMatch(/keepOutboxUntil: 'completed'/);

  const eventIds = await twentyWaitingJobs();
  expect(eventIds).toHaveLength(10);
  await waitFor('an empty outbox', async () => (await db!.outboxCount()) === 0, 5000);
  await restartRedis();
  expect(await jobCounts(queue)).toEqual(onlyCompleted(0));

  // The documented loss: nothing is left anywhere to deliver them.
  es.worker();
  await sleep(1500);
  expect(await db.runPairs()).toEqual([]);
  expect(await db.outboxCount()).toBe(0);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(0));
}, 60_000);

test("without persistence but with keepOutboxUntil: 'completed', the relay adds the jobs the restart lost again and each runs once", async () => {
  db = await OutageDatabase.create('redis_restart_kept');
  redis = await PrivateRedis.create({ persistence: false });
  await redis.start();
  const name = uniqueQueueName('restart-kept');
  queue = inspectQueue(name, redis.url);
  const attached = await attach(redis.url, name, { keepOutboxUntil: 'completed', relay: { recheckAfter: 300 } });
  es = attached.es;

  const eventIds = await twentyWaitingJobs();
  // Kept, marked as enqueued: the relay does not hand them over a second time while Redis has them.
  await waitFor('20 outbox rows marked enqueued', async () => (await db!.outboxCount()) === 20 && (await unsettledOutboxRows()) === 0, 5000);
  const waitingIds = (await queue.getJobs(['waiting'])).map((job) => job.id).sort();
  await restartRedis();
  expect(await jobCounts(queue)).toEqual(onlyCompleted(0));

  es.worker();
  await waitFor('20 completed jobs and an empty outbox', async () => (await jobCounts(queue!)).completed === 20 && (await db!.outboxCount()) === 0, 20_000);
  // Let a late recheck show itself if it would add a finished job again.
  await sleep(800);
  expect(await db.runPairs()).toEqual(expectedPairs(eventIds));
  const jobs = await completedJobs(queue);
  expect(jobs.map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  // Added again under the same ids: the outbox row's key, not a new one.
  expect(jobs.map((job) => job.id).sort()).toEqual(waitingIds);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(20));
  expect(await db.outboxCount()).toBe(0);
  // Outbox rows kept until completion make a forgetful Redis safe: no warning about it.
  expect(configWarnings(attached.errors)).toEqual([]);
  recordFigure('jobs lost', 20 - jobs.length);
}, 60_000);

test('a Redis that may evict keys (maxmemory-policy allkeys-lru) is reported at attach', async () => {
  db = await OutageDatabase.create('redis_evicting');
  // BullMQ prints its own eviction warning on the console; the library's goes through onError.
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  handStarted = await HandStartedRedis.start(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'yes']);
  const attached = await attach(handStarted.url, uniqueQueueName('evicting'));
  es = attached.es;

  const [warning] = await waitFor('a REDIS_CONFIG warning', async () => configWarnings(attached.errors).length > 0 && configWarnings(attached.errors), 5000);
  expect(warning).toBeInstanceOf(EventSourcingError);
  expect(warning.message).toMatch(/maxmemory-policy is 'allkeys-lru'/);
  expect(warning.message).toMatch(/noeviction/);
  // This one runs with the append-only file: the eviction warning comes alone.
  await sleep(200);
  expect(configWarnings(attached.errors)).toHaveLength(1);
}, 30_000);
