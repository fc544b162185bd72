import type { Queue } from 'bullmq';
import { reactorNames } from '../processes/model';
import {
  ChildApp,
  closeAndExpectExit,
  compileProcesses,
  freePort,
  inspectQueue,
  jobCounts,
  killChildren,
  onlyCompleted,
  PrivateRedis,
  ReliabilityDatabase,
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

let db: ReliabilityDatabase | undefined;
let queue: Queue | undefined;
let redis: PrivateRedis | undefined;

beforeAll(async () => {
  await compileProcesses();
}, 120_000);

afterEach(async () => {
  await killChildren();
  await redis?.start(); // a failed test may have left it stopped: clean the queue, then stop it
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await redis?.dispose();
  await db?.close();
  queue = undefined;
  redis = undefined;
  db = undefined;
});

afterAll(async () => {
  await killChildren();
});

/** Every (event id, reactor) exactly once in both phases, and nothing else. */
async function expectEachRunOnce(eventIds: number[]): Promise<void> {
  const expected = eventIds.flatMap((id) => reactorNames.map((reactor) => `${id}/${reactor}`)).sort();
  for (const phase of ['started', 'done'] as const) {
    const runs = await db!.runs(phase);
    expect(runs.map((run) => `${run.eventId}/${run.reactor}`).sort()).toEqual(expected);
  }
}

test('a process whose Redis is unreachable saves promptly, exits by itself, and another process delivers its jobs', async () => {
  db = await ReliabilityDatabase.create('no_redis');
  const queueName = uniqueQueueName('no-redis');
  queue = inspectQueue(queueName, sharedRedisUrl());
  const closedPort = await freePort();

  const cutOff = await ChildApp.start('cut-off', 'app', { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${closedPort}`, QUEUE_NAME: queueName });
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

  const deliverer = await ChildApp.start('deliverer', 'app', {
    DATABASE_URL: db.url,
    REDIS_URL: sharedRedisUrl(),
    QUEUE_NAME: queueName,
    RELAY_GRACE: '200',
    RELAY_INTERVAL: '100',
  });
  await deliverer.request({ cmd: 'worker' });
  await waitFor('40 completed jobs', async () => (await jobCounts(queue!)).completed === 40, 20_000);
  await closeAndExpectExit(deliverer);

  await expectEachRunOnce(eventIds);
  expect((await db.runs()).every((run) => run.pid === deliverer.pid)).toBe(true);
  expect(await db.outboxCount()).toBe(0);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(40));
  for (const id of await db.jobIds(reactorNames)) expect(await (await queue.getJob(id))?.getState()).toBe('completed');
  expect(deliverer.errors).toEqual([]);
}, 60_000);

test('Redis stopped while 50 events are saved (10 before, 40 during the outage): no save fails or hangs, and all jobs run once Redis is back', async () => {
  db = await ReliabilityDatabase.create('redis_restart');
  redis = await PrivateRedis.create();
  await redis.start();
  const queueName = uniqueQueueName('redis-restart');
  queue = inspectQueue(queueName, redis.url);
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_NAME: queueName, RELAY_GRACE: '300', RELAY_INTERVAL: '200' };
  const worker = await ChildApp.start('worker', 'app', env);
  await worker.request({ cmd: 'worker' });
  // One writer lives through the outage; the other, a worker too, shuts down during it, leaving
  // its jobs to the relay of the remaining worker.
  const [staying, leaving] = await Promise.all([ChildApp.start('staying-writer', 'app', env), ChildApp.start('leaving-worker', 'app', env)]);
  await leaving.request({ cmd: 'worker' });

  // Ten events while Redis is up, their jobs done before it goes away (it keeps no data).
  const before = await staying.request({ cmd: 'save', count: 10 });
  expect(before.errors).toEqual([]);
  await waitFor('20 completed jobs', async () => (await jobCounts(queue!)).completed === 20, 20_000);

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
  // ioredis retries less often the longer an outage lasts (BullMQ's retryStrategy): allow for it.
  await waitFor('100 reactor runs done', async () => (await db!.runs('done')).length >= 100, 45_000);
  await waitFor('an empty outbox and 80 completed jobs', async () => {
    const counts = await jobCounts(queue!);
    return (await db!.outboxCount()) === 0 && counts.completed === 80;
  }, 15_000);
  await Promise.all([staying, worker].map(closeAndExpectExit));

  await expectEachRunOnce(eventIds);
  const runsAfterOutage = (await db.runs()).filter((run) => !eventIds.slice(0, 10).includes(run.eventId));
  expect(runsAfterOutage.every((run) => run.pid === worker.pid)).toBe(true);
  expect(await db.outboxCount()).toBe(0);
  // The restarted Redis started empty: it holds the jobs of the 40 events saved during the outage.
  expect(await jobCounts(queue)).toEqual(onlyCompleted(80));
  const outageJobIds = (await db.jobIds(reactorNames)).slice(20);
  for (const id of outageJobIds) expect(await (await queue.getJob(id))?.getState()).toBe('completed');
}, 90_000);
