import type { Queue } from 'bullmq';
import { reactorNames } from '../processes/model';
import {
  ChildApp,
  closeAndExpectExit,
  compileProcesses,
  inspectQueue,
  jobCounts,
  killChildren,
  onlyCompleted,
  ReliabilityDatabase,
  sharedRedisUrl,
  uniqueQueueName,
  waitFor,
} from '../support/processes';

/**
 * A process killed between COMMIT and the hand-over of its reactor jobs to Redis: the outbox holds
 * them, and a relay in another process delivers every one.
 */

let db: ReliabilityDatabase | undefined;
let queue: Queue | undefined;

beforeAll(async () => {
  await compileProcesses();
}, 120_000);

afterAll(async () => {
  await killChildren();
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await db?.close();
});

test('a process SIGKILLed after COMMIT and before enqueue loses no job: the relay delivers them all', async () => {
  db = await ReliabilityDatabase.create('crash');
  const queueName = uniqueQueueName('crash');
  queue = inspectQueue(queueName, sharedRedisUrl());
  const env = { DATABASE_URL: db.url, REDIS_URL: sharedRedisUrl(), QUEUE_NAME: queueName, RELAY_GRACE: '200', RELAY_INTERVAL: '100' };

  // Ten events in one transaction; the after-commit listener kills the process right after the
  // COMMIT, when the hand-over is scheduled but has not talked to Redis yet.
  const writer = await ChildApp.start('writer', 'app', env);
  await writer.request({ cmd: 'kill-after-commit' });
  writer.post({ cmd: 'save', count: 10, perTransaction: 10 });
  expect(await writer.waitForExit(20_000)).toEqual({ code: null, signal: 'SIGKILL' });
  expect(writer.messages.filter((message) => message.type === 'saved')).toEqual([]);

  // Committed, and not handed over: the events exist, their 20 outbox rows too, the queue is empty.
  const eventIds = await db.eventIds();
  expect(eventIds).toHaveLength(10);
  expect(await db.outboxCount()).toBe(20);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(0));

  // A relay on its own delivers them to the queue...
  const relay = await ChildApp.start('relay', 'app', env);
  await relay.request({ cmd: 'relay' });
  await waitFor('the relay to empty the outbox', async () => (await db!.outboxCount()) === 0, 15_000);
  expect(await jobCounts(queue)).toEqual({ ...onlyCompleted(0), waiting: 20 });

  // ...and a worker without a relay of its own runs them.
  const worker = await ChildApp.start('worker', 'app', env);
  await worker.request({ cmd: 'worker', relay: false });
  await waitFor('20 completed jobs', async () => (await jobCounts(queue!)).completed === 20, 20_000);
  await Promise.all([relay, worker].map(closeAndExpectExit));

  const expected = eventIds.flatMap((id) => reactorNames.map((reactor) => `${id}/${reactor}`)).sort();
  for (const phase of ['started', 'done'] as const) {
    const runs = await db.runs(phase);
    expect(runs.map((run) => `${run.eventId}/${run.reactor}`).sort()).toEqual(expected);
    expect(runs.every((run) => run.pid === worker.pid && run.attempt === 1)).toBe(true);
  }
  expect(await db.outboxCount()).toBe(0);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(20));
  const jobIds = await db.jobIds(queue, reactorNames);
  expect(jobIds).toHaveLength(20);
  for (const id of jobIds) expect(await (await queue.getJob(id))?.getState()).toBe('completed');
  expect((await db.runs('done')).map((run) => run.jobId).sort()).toEqual([...jobIds].sort());
  expect([...relay.errors, ...worker.errors]).toEqual([]);
}, 60_000);
