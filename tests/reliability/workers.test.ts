import type { Queue } from 'bullmq';
import { reactorNames } from '../processes/model';
import { childProcessHooks } from '../support/child-hooks';
import {
  ChildApp,
  closeAndExpectExit,
  disposeQueue,
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
 * Workers in separate processes on one queue: jobs shared without running twice, and a job whose
 * worker is SIGKILLed mid-run taken over by another worker.
 */

let db: ReliabilityDatabase | undefined;
let queue: Queue | undefined;

childProcessHooks();

afterEach(async () => {
  await killChildren();
  await disposeQueue(queue);
  await db?.close();
  queue = undefined;
  db = undefined;
});

function appEnv(queueName: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: db!.url, REDIS_URL: sharedRedisUrl(), QUEUE_NAME: queueName, ...extra };
}

test('two worker processes share 200 jobs, each handled exactly once, both taking part', async () => {
  db = await ReliabilityDatabase.create('share');
  const queueName = uniqueQueueName('share');
  queue = inspectQueue(queueName, sharedRedisUrl());
  // A few milliseconds per job, so a backlog builds up and both workers are busy.
  const env = appEnv(queueName, { REACTOR_DELAY_MS: '5' });
  const workers = await Promise.all([ChildApp.start('worker-1', 'app', env), ChildApp.start('worker-2', 'app', env)]);
  await Promise.all(workers.map((worker) => worker.request({ cmd: 'worker' })));
  const writer = await ChildApp.start('writer', 'app', env);

  const saved = await writer.request({ cmd: 'save', count: 100 }, 60_000);
  expect(saved.errors).toEqual([]);

  await waitFor('200 completed jobs', async () => (await jobCounts(queue!)).completed === 200, 45_000);
  await Promise.all([writer, ...workers].map(closeAndExpectExit));
  // One job per (event, reactor), with the library's id, and no other job.
  const jobIds = await db.jobIds(queue, reactorNames);
  expect(jobIds).toHaveLength(200);

  // The database: every (event, reactor) ran exactly once, started and done, by one of the workers.
  const eventIds = await db.eventIds();
  expect(eventIds).toHaveLength(100);
  const expected = eventIds.flatMap((id) => reactorNames.map((reactor) => `${id}/${reactor}`)).sort();
  for (const phase of ['started', 'done'] as const) {
    const runs = await db.runs(phase);
    expect(runs.map((run) => `${run.eventId}/${run.reactor}`).sort()).toEqual(expected);
  }
  expect([...(await db.effects()).keys()].sort()).toEqual(expected);
  const done = await db.runs('done');
  const byPid = new Map<number, number>();
  for (const run of done) byPid.set(run.pid, (byPid.get(run.pid) ?? 0) + 1);
  expect([...byPid.keys()].sort()).toEqual(workers.map((worker) => worker.pid).sort());
  for (const worker of workers) expect(byPid.get(worker.pid)).toBeGreaterThan(0);
  expect(done.every((run) => run.attempt === 1)).toBe(true);
  expect(done.map((run) => run.jobId).sort()).toEqual([...jobIds].sort());
  expect(await db.outboxCount()).toBe(0);

  // BullMQ: 200 completed jobs with the library's ids, nothing else.
  expect(await jobCounts(queue)).toEqual(onlyCompleted(200));
  for (const id of jobIds) {
    const job = await queue.getJob(id);
    expect(job && { state: await job.getState(), attemptsMade: job.attemptsMade }).toEqual({ state: 'completed', attemptsMade: 1 });
  }
  for (const child of [writer, ...workers]) expect(child.errors).toEqual([]);
}, 90_000);

test('a job whose worker process is SIGKILLed mid-run runs again in another worker and completes', async () => {
  db = await ReliabilityDatabase.create('stalled');
  const queueName = uniqueQueueName('stalled');
  queue = inspectQueue(queueName, sharedRedisUrl());
  const fastStalls = { lockDuration: 1000, stalledInterval: 1000 };

  // The first worker's reactors sleep for a minute after recording 'started': it dies mid-job.
  const doomed = await ChildApp.start('doomed-worker', 'app', appEnv(queueName, { REACTOR_DELAY_MS: '60000' }));
  await doomed.request({ cmd: 'worker', concurrency: 1, ...fastStalls });
  const saved = await doomed.request({ cmd: 'save', count: 1 });
  expect(saved.errors).toEqual([]);
  const [eventId] = await db.eventIds();

  const interrupted = await waitFor('the doomed worker to start a job', async () => (await db!.runs('started')).find((run) => run.pid === doomed.pid));
  await doomed.kill('SIGKILL');
  expect(doomed.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
  const interruptedJob = await queue.getJob(interrupted.jobId!);
  expect(await interruptedJob!.getState()).toBe('active'); // still locked by the dead worker

  const rescuer = await ChildApp.start('rescuer', 'app', appEnv(queueName));
  await rescuer.request({ cmd: 'worker', concurrency: 1, ...fastStalls });
  await waitFor('both jobs completed', async () => (await jobCounts(queue!)).completed === 2, 30_000);
  await closeAndExpectExit(rescuer);
  const jobIds = await db.jobIds(queue, reactorNames);
  expect(jobIds).toContain(interrupted.jobId);

  // The database: the interrupted reactor started twice (dead worker, rescuer) and finished once,
  // in the rescuer; the other reactor ran once, in the rescuer.
  const runs = await db.runs();
  const summary = (reactor: string) =>
    runs.filter((run) => run.reactor === reactor).map((run) => ({ phase: run.phase, pid: run.pid, eventId: run.eventId, jobId: run.jobId }));
  const other = reactorNames.find((reactor) => reactor !== interrupted.reactor)!;
  const otherJobId = jobIds.find((id) => id !== interrupted.jobId);
  expect(summary(interrupted.reactor)).toEqual([
    { phase: 'started', pid: doomed.pid, eventId, jobId: interrupted.jobId },
    { phase: 'started', pid: rescuer.pid, eventId, jobId: interrupted.jobId },
    { phase: 'done', pid: rescuer.pid, eventId, jobId: interrupted.jobId },
  ]);
  expect(summary(other)).toEqual([
    { phase: 'started', pid: rescuer.pid, eventId, jobId: otherJobId },
    { phase: 'done', pid: rescuer.pid, eventId, jobId: otherJobId },
  ]);
  // The effect was made once, by the run that died; the rerun's attempt changed nothing.
  expect(await db.effects()).toEqual(
    new Map([
      [`${eventId}/${interrupted.reactor}`, doomed.pid],
      [`${eventId}/${other}`, rescuer.pid],
    ]),
  );
  expect(await db.outboxCount()).toBe(0);

  // BullMQ: both completed; the interrupted one was detected as stalled once, not failed.
  expect(await jobCounts(queue)).toEqual(onlyCompleted(2));
  const rerun = (await queue.getJob(interrupted.jobId!))!;
  expect({ state: await rerun.getState(), stalledCounter: rerun.stalledCounter, failedReason: rerun.failedReason }).toEqual({
    state: 'completed',
    stalledCounter: 1,
    failedReason: undefined,
  });
  expect(rescuer.errors).toEqual([]);
}, 60_000);
