import type { Queue } from 'bullmq';
import { EventSourcing } from '../../src';
import { OrderPlaced } from '../processes/model';
import { recordingDispatcher } from '../processes/reactor-runs';
import { childProcessHooks } from '../support/child-hooks';
import { recordFigure } from '../support/figures';
import { completedJobs, expectedPairs, OutageDatabase, redisPid } from '../support/outages';
import {
  ChildApp,
  closeAndExpectExit,
  disposeQueue,
  inspectQueue,
  jobCounts,
  killChildren,
  onlyCompleted,
  PrivateRedis,
  uniqueQueueName,
  waitFor,
} from '../support/processes';

/**
 * A Redis that accepts connections but never answers (SIGSTOPped, like a hung or swapping
 * server): shutting down must not wait for it. es.close(), worker.close() and a whole process
 * finish within bounds set by `closeTimeout`, and once Redis answers again no job is missing.
 */

const CLOSE_TIMEOUT = 1000;
/** closeTimeout bounds each step of a close (workers, relays, queue name, hand-overs, queue): a few seconds in all. */
const CLOSE_BOUND_MS = 6000;

let db: OutageDatabase | undefined;
let redis: PrivateRedis | undefined;
let frozenPid: number | undefined;
let queue: Queue | undefined;
let es: EventSourcing | undefined;

childProcessHooks();

afterEach(async () => {
  if (frozenPid) process.kill(frozenPid, 'SIGCONT');
  frozenPid = undefined;
  await killChildren();
  await es?.close();
  await disposeQueue(queue);
  await redis?.dispose();
  await db?.close();
  es = undefined;
  queue = undefined;
  redis = undefined;
  db = undefined;
});

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

test("with Redis frozen (SIGSTOP), worker.close(), es.close() and a child's close finish within their bounds; thawed, the child exits and every job runs once", async () => {
  db = await OutageDatabase.create('redis_frozen');
  redis = await PrivateRedis.create({ persistence: true });
  await redis.start();
  const pid = await redisPid(redis.url);
  const queueName = uniqueQueueName('redis-frozen');
  queue = inspectQueue(queueName, redis.url);
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_NAME: queueName, CLOSE_TIMEOUT: String(CLOSE_TIMEOUT), RELAY_GRACE: '300', RELAY_INTERVAL: '200' };

  // Everything works before the freeze: a child writes and runs its jobs, this process has a worker.
  const child = await ChildApp.start('frozen-out', 'outage-app', env);
  await child.request({ cmd: 'worker' });
  await child.request({ cmd: 'create', count: 2 });
  await waitFor('4 completed jobs', async () => (await jobCounts(queue!)).completed === 4, 15_000);
  const errors: unknown[] = [];
  es = await EventSourcing.attach(db.dataSource, {
    dispatcher: recordingDispatcher(),
    createSchema: false,
    queue: { connection: redis.url, name: queueName, closeTimeout: CLOSE_TIMEOUT, relay: { grace: 300, interval: 200 } },
    onError: (error) => errors.push(error),
  });
  const worker = es.worker();
  await worker.waitUntilReady();

  process.kill(pid, 'SIGSTOP');
  frozenPid = pid;
  // A save does not wait for the queue: it commits and returns while Redis hangs.
  const saveMs = await timed(() => es!.append(OrderPlaced.build({ number: 3 })));
  expect(saveMs).toBeLessThan(2000);

  const workerCloseMs = await timed(() => worker.close());
  const esCloseMs = await timed(() => es!.close());
  es = undefined;
  const childClose = await child.request({ cmd: 'close' }, 20_000);
  expect(workerCloseMs).toBeLessThan(CLOSE_BOUND_MS);
  expect(esCloseMs).toBeLessThan(CLOSE_BOUND_MS);
  expect(childClose.ms).toBeLessThan(CLOSE_BOUND_MS);

  // The child exits while Redis is still frozen: the bounded close dropped every connection and
  // left BullMQ no way to open a new one.
  expect(await child.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  process.kill(pid, 'SIGCONT');
  frozenPid = undefined;
  // The event saved during the freeze: its jobs are in the outbox or reached Redis, never lost.
  const deliverer = await ChildApp.start('deliverer', 'outage-app', env);
  await deliverer.request({ cmd: 'worker' });
  const eventIds = await db.eventIds();
  expect(eventIds).toHaveLength(3);
  await waitFor('6 completed jobs and an empty outbox', async () => (await jobCounts(queue!)).completed === 6 && (await db!.outboxCount()) === 0, 20_000);
  await closeAndExpectExit(deliverer);
  expect(await db.runPairs()).toEqual(expectedPairs(eventIds));
  expect((await completedJobs(queue)).map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  expect(await jobCounts(queue)).toEqual(onlyCompleted(6));

  recordFigure('outages injected', 1);
  recordFigure('close time bounded: worker.close() with Redis frozen', Math.round(workerCloseMs), 'ms');
  recordFigure('close time bounded: es.close() with Redis frozen', Math.round(esCloseMs), 'ms');
  recordFigure('close time bounded: child close with Redis frozen', Math.round(childClose.ms as number), 'ms');
  recordFigure('jobs lost', 6 - (await completedJobs(queue)).length);
}, 90_000);
