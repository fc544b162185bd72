import type { Queue } from 'bullmq';
import { childProcessHooks } from '../support/child-hooks';
import { recordFigure } from '../support/figures';
import { completedJobs, expectedPairs, OutageDatabase } from '../support/outages';
import {
  ChildApp,
  closeAndExpectExit,
  disposeQueue,
  freePort,
  inspectQueue,
  jobCounts,
  killChildren,
  onlyCompleted,
  PrivateRedis,
  sharedRedisUrl,
  uniqueQueueName,
  waitFor,
} from '../support/processes';

/**
 * Redis unreachable: saves go on and return promptly, the process still shuts down by itself, and
 * the jobs reach the queue once a Redis is there (relay, reconnecting worker).
 */

// "Does not hang", not a benchmark: a save waits for PostgreSQL only, never for Redis.
const PROMPT_SAVE_MS = 2000;

let db: OutageDatabase | undefined;
let queue: Queue | undefined;
let redis: PrivateRedis | undefined;

childProcessHooks();

afterEach(async () => {
  await killChildren();
  await redis?.start(); // a failed test may have left it stopped: clean the queue, then stop it
  await disposeQueue(queue);
  await redis?.dispose();
  await db?.close();
  queue = undefined;
  redis = undefined;
  db = undefined;
});

/**
 * Every (event, reactor) ran exactly once, and the queue's completed jobs, compared by what they
 * carry (job ids end with a random key), are one per (event, reactor), each the job that ran.
 */
async function expectEachJobRunOnce(eventIds: number[]): Promise<void> {
  expect(await db!.runPairs()).toEqual(expectedPairs(eventIds));
  const jobs = await completedJobs(queue!);
  expect(jobs.map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  expect((await db!.runs()).map((run) => run.jobId).sort()).toEqual(jobs.map((job) => job.id).sort());
}

test('a process whose Redis is unreachable saves promptly, exits by itself, and another process delivers its jobs', async () => {
  db = await OutageDatabase.create('no_redis');
  const queueName = uniqueQueueName('no-redis');
  queue = inspectQueue(queueName, sharedRedisUrl());
  const closedPort = await freePort();

  const cutOff = await ChildApp.start('cut-off', 'outage-app', { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${closedPort}`, QUEUE_NAME: queueName });
  const saved = await cutOff.request({ cmd: 'save', count: 20 }, 60_000);
  expect(saved.errors).toEqual([]);
  expect(saved.durations).toHaveLength(20);
  for (const duration of saved.durations) expect(duration).toBeLessThan(PROMPT_SAVE_MS);
  const eventIds = await db.eventIds();
  expect(eventIds).toHaveLength(20);
  expect(await db.outboxCount()).toBe(40);

  // es.close() and dataSource.destroy() finish, and nothing keeps the process alive afterwards.
  await closeAndExpectExit(cutOff);
  expect(await db.outboxCount()).toBe(40);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(0));

  const deliverer = await ChildApp.start('deliverer', 'outage-app', {
    DATABASE_URL: db.url,
    REDIS_URL: sharedRedisUrl(),
    QUEUE_NAME: queueName,
    RELAY_GRACE: '200',
    RELAY_INTERVAL: '100',
  });
  await deliverer.request({ cmd: 'worker' });
  await waitFor('40 completed jobs', async () => (await jobCounts(queue!)).completed === 40, 20_000);
  await closeAndExpectExit(deliverer);

  await expectEachJobRunOnce(eventIds);
  expect((await db.runs()).every((run) => run.pid === deliverer.pid)).toBe(true);
  expect(await db.outboxCount()).toBe(0);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(40));
  expect(deliverer.errors).toEqual([]);
  recordFigure('events lost', 0);
  recordFigure('jobs lost', 0);
}, 60_000);

test('Redis (with its append-only file) stopped while 50 events are saved (10 before, 40 during the outage): no save fails or hangs, and every job runs exactly once', async () => {
  db = await OutageDatabase.create('redis_outage_aof');
  redis = await PrivateRedis.create({ persistence: true });
  await redis.start();
  const queueName = uniqueQueueName('redis-outage-aof');
  queue = inspectQueue(queueName, redis.url);
  // A short closeTimeout: the leaving process closes while Redis is down, and a shorter outage
  // keeps ioredis's growing reconnect delay (BullMQ's retryStrategy) short.
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_NAME: queueName, RELAY_GRACE: '300', RELAY_INTERVAL: '200', CLOSE_TIMEOUT: '1000' };
  const worker = await ChildApp.start('worker', 'outage-app', env);
  await worker.request({ cmd: 'worker' });
  // One writer lives through the outage; the other, a worker too, shuts down during it, leaving
  // its jobs to the relay of the remaining worker.
  const [staying, leaving] = await Promise.all([ChildApp.start('staying-writer', 'outage-app', env), ChildApp.start('leaving-worker', 'outage-app', env)]);
  await leaving.request({ cmd: 'worker' });

  // Ten events while Redis is up, their jobs done before it goes away.
  const before = await staying.request({ cmd: 'save', count: 10 });
  expect(before.errors).toEqual([]);
  await waitFor('20 completed jobs', async () => (await jobCounts(queue!)).completed === 20, 20_000);
  const eventsBefore = await db.eventIds();

  await redis.stop();
  const during = await Promise.all([staying.request({ cmd: 'save', count: 20 }, 60_000), leaving.request({ cmd: 'save', count: 20 }, 60_000)]);
  for (const saved of during) {
    expect(saved.errors).toEqual([]);
    expect(saved.durations).toHaveLength(20);
  }
  for (const duration of [before, ...during].flatMap((saved) => saved.durations)) expect(duration).toBeLessThan(PROMPT_SAVE_MS);
  await closeAndExpectExit(leaving);
  const eventIds = await db.eventIds();
  expect(eventIds).toHaveLength(50);
  expect(await db.outboxCount()).toBe(80);

  await redis.start();
  await waitFor('an empty outbox and 100 completed jobs', async () => (await db!.outboxCount()) === 0 && (await jobCounts(queue!)).completed === 100, 45_000);
  await Promise.all([staying, worker].map(closeAndExpectExit));

  const runsAfterOutage = (await db.runs()).filter((run) => !eventsBefore.includes(run.eventId));
  expect(runsAfterOutage).toHaveLength(80);
  expect(runsAfterOutage.every((run) => run.pid === worker.pid)).toBe(true);
  expect(await db.outboxCount()).toBe(0);
  // The restarted Redis read its append-only file back: the 20 jobs completed before the outage
  // are still there (their ids keep a late duplicate out), beside the 80 of the outage.
  expect(await jobCounts(queue)).toEqual(onlyCompleted(100));
  await expectEachJobRunOnce(eventIds);
  recordFigure('outages injected', 1);
  recordFigure('server restarts', 1);
  recordFigure('writes attempted', 50);
  recordFigure('writes committed', eventIds.length);
  recordFigure('events lost', 50 - eventIds.length);
  recordFigure('jobs lost', 100 - (await completedJobs(queue)).length);
}, 90_000);
