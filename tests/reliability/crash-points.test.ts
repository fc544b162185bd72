import type { Queue } from 'bullmq';
import { EventSourcing } from '../../src';
import { Order, reactorNames } from '../processes/model';
import { childProcessHooks } from '../support/child-hooks';
import { recordFigure } from '../support/figures';
import {
  allJobs,
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
 * A process SIGKILLed at fixed points of writing and reacting: inside the transaction before
 * COMMIT, after COMMIT before the hand-over to Redis, inside a trigger reactor, and a worker
 * killed mid-job twice in a row. Afterwards a worker in another process delivers everything:
 * every committed event's async reactors ran and finished once, none ran for an event that was
 * not committed, and each reactor's idempotent effect exists exactly once.
 */

interface Scenario {
  db: ReliabilityDatabase;
  queue: Queue;
  env: Record<string, string>;
  /** The process that delivers after the crash, booted beside the one that crashes. */
  deliverer: () => Promise<ChildApp>;
}
const scenarios: Scenario[] = [];

childProcessHooks();

afterEach(async () => {
  await killChildren();
  for (const { db, queue } of scenarios.splice(0)) {
    await disposeQueue(queue);
    await db.close();
  }
});

async function scenario(name: string, options: { deliverer?: boolean } = {}): Promise<Scenario> {
  const db = await ReliabilityDatabase.create(name);
  const queueName = uniqueQueueName(name);
  const queue = inspectQueue(queueName, sharedRedisUrl());
  const env = { DATABASE_URL: db.url, REDIS_URL: sharedRedisUrl(), QUEUE_NAME: queueName, RELAY_GRACE: '200', RELAY_INTERVAL: '100' };
  const booting = options.deliverer === false ? undefined : ChildApp.start('deliverer', 'app', env, 30_000);
  booting?.catch(() => undefined);
  const created = { db, queue, env, deliverer: () => booting ?? Promise.reject(new Error(`${name} has no deliverer`)) };
  scenarios.push(created);
  return created;
}

const pairs = (eventIds: number[]) => eventIds.flatMap((id) => reactorNames.map((reactor) => `${id}/${reactor}`)).sort();

/**
 * A worker (with its relay) in a fresh process delivers and runs everything left; then the outbox
 * is empty, each committed (event, reactor) has exactly one completed job and ran to 'done' once,
 * its effect exists once, and nothing at all happened for the uncommitted events.
 */
async function expectDeliveredOnce({ db, queue, deliverer }: Scenario, committed: number[], uncommitted: number[]): Promise<void> {
  expect(await db.eventIds()).toEqual(committed);
  expect(committed.filter((id) => uncommitted.includes(id))).toEqual([]);
  const worker = await deliverer();
  await worker.request({ cmd: 'worker', concurrency: 4 });
  const expectedJobs = committed.length * reactorNames.length;
  await waitFor(
    `an empty outbox and ${expectedJobs} completed jobs`,
    async () => (await db.outboxCount()) === 0 && (await jobCounts(queue)).completed === expectedJobs,
    20_000,
  );
  await closeAndExpectExit(worker);

  expect(await db.outboxCount()).toBe(0);
  expect(await jobCounts(queue)).toEqual(onlyCompleted(expectedJobs));
  // One job per committed (event, reactor) with the library's id; a job for any other event throws here.
  expect(await db.jobIds(queue, reactorNames)).toHaveLength(expectedJobs);
  for (const phase of ['started', 'done'] as const) {
    expect((await db.runs(phase)).map((run) => `${run.eventId}/${run.reactor}`).sort()).toEqual(pairs(committed));
  }
  expect([...(await db.effects()).keys()].sort()).toEqual(pairs(committed));
  // Each committed OrderPlaced made its order; the rolled-back ones left none, and rows equal their replay.
  const es = await EventSourcing.attach(db.dataSource, { createSchema: false });
  try {
    expect(await db.dataSource.getRepository(Order).count()).toBe(committed.length);
    expect(await es.verify(Order)).toEqual([]);
  } finally {
    await es.close();
  }
  expect(worker.errors).toEqual([]);
  recordFigure('events committed', committed.length);
  recordFigure('jobs lost', expectedJobs - (await jobCounts(queue)).completed);
  recordFigure('duplicate effects', (await db.runs('done')).length - pairs(committed).length);
}

/** Sends a command that makes the child SIGKILL itself; returns what it said just before. */
async function crashed(child: ChildApp, command: Record<string, unknown>): Promise<Record<string, any> | undefined> {
  child.post(command);
  expect(await child.waitForExit(20_000)).toEqual({ code: null, signal: 'SIGKILL' });
  recordFigure('processes killed', 1);
  recordFigure('crash points', 1);
  return child.messages.find((message) => message.type === 'crashing');
}

test('SIGKILL inside the transaction, after the inserts and before COMMIT: nothing of it is written, nothing runs for it', async () => {
  const context = await scenario('crash_before_commit');
  const writer = await ChildApp.start('writer', 'app', context.env, 30_000);
  expect((await writer.request({ cmd: 'save', count: 3 })).errors).toEqual([]);
  const committed = await context.db.eventIds();

  const crashing = await crashed(writer, { cmd: 'crash', at: 'before-commit', count: 4 });
  expect(crashing).toMatchObject({ at: 'before-commit' });
  expect(crashing!.uncommitted).toHaveLength(4);
  // PostgreSQL rolls back the dead connection's transaction: only the first three events remain.
  await expectDeliveredOnce(context, committed, crashing!.uncommitted);
}, 60_000);

test('SIGKILL after COMMIT, before the hand-over to Redis: the outbox keeps the jobs and the relay delivers each once', async () => {
  const context = await scenario('crash_after_commit');
  const booting = ChildApp.start('relay', 'app', context.env, 30_000);
  booting.catch(() => undefined);
  const writer = await ChildApp.start('writer', 'app', context.env, 30_000);
  expect((await writer.request({ cmd: 'save', count: 2 })).errors).toEqual([]);
  // Their hand-over runs after save() returned: let it finish (jobs added, outbox rows deleted).
  await waitFor(
    'the first saves to be handed over',
    async () => (await jobCounts(context.queue)).waiting === 2 * reactorNames.length && (await context.db.outboxCount()) === 0,
    10_000,
  );
  await writer.request({ cmd: 'kill-after-commit' });

  const crashing = await crashed(writer, { cmd: 'save', count: 3, perTransaction: 3 });
  expect(crashing).toBeUndefined();
  expect(writer.messages.filter((message) => message.type === 'saved')).toHaveLength(1);
  const committed = await context.db.eventIds();
  expect(committed).toHaveLength(5);
  // The three events of the killed transaction are committed and their six jobs only in the outbox.
  expect(await context.db.outboxCount()).toBe(3 * reactorNames.length);
  expect(await jobCounts(context.queue)).toEqual({ ...onlyCompleted(0), waiting: 2 * reactorNames.length });

  // A relay on its own hands them to the queue: every job now waits there, none runs yet.
  const relay = await booting;
  await relay.request({ cmd: 'relay' });
  await waitFor('the relay to empty the outbox', async () => (await context.db.outboxCount()) === 0, 15_000);
  expect(await jobCounts(context.queue)).toEqual({ ...onlyCompleted(0), waiting: 5 * reactorNames.length });
  expect(await context.db.runs()).toEqual([]);
  await closeAndExpectExit(relay);
  expect(relay.errors).toEqual([]);
  await expectDeliveredOnce(context, committed, []);
}, 60_000);

test('SIGKILL inside a trigger reactor: its event and the events before it in the transaction roll back', async () => {
  const context = await scenario('crash_in_trigger');
  const writer = await ChildApp.start('writer', 'app', context.env, 30_000);
  expect((await writer.request({ cmd: 'save', count: 2 })).errors).toEqual([]);
  const committed = await context.db.eventIds();

  const crashing = await crashed(writer, { cmd: 'crash', at: 'trigger', count: 3 });
  expect(crashing).toMatchObject({ at: 'trigger' });
  // The trigger ran for the third event, after its INSERT and its outbox rows, so it had an id.
  expect(crashing!.uncommitted).toHaveLength(3);
  await expectDeliveredOnce(context, committed, crashing!.uncommitted);
}, 60_000);

/**
 * Two reactor jobs run in a worker that is SIGKILLed mid-run, then again in a second worker that
 * is SIGKILLed mid-run too, and then a third worker takes them over. Returns the jobs and runs.
 */
async function killWorkerTwice(name: string, stalled: { maxStalledCount?: number }) {
  // The doomed workers' locks expire soon after they die; the third worker keeps its lock long, so
  // that a busy machine cannot make it lose a job it is running. Everyone looks for stalls often.
  const doomed = { lockDuration: 1500, stalledInterval: 500, ...stalled };
  const rescuer = { lockDuration: 10_000, stalledInterval: 500, ...stalled };
  const context = await scenario(name, { deliverer: false });
  const { db, queue } = context;
  const slow = { ...context.env, REACTOR_DELAY_MS: '60000' };
  const first = await ChildApp.start(`${name}-worker-1`, 'app', slow, 30_000);
  await first.request({ cmd: 'worker', concurrency: 2, ...doomed });
  // The next workers boot while the first is busy; they take no job before they are told to.
  const later = Promise.all([ChildApp.start(`${name}-worker-2`, 'app', slow, 30_000), ChildApp.start(`${name}-worker-3`, 'app', context.env, 30_000)]);
  later.catch(() => undefined);
  expect((await first.request({ cmd: 'save', count: 1 })).errors).toEqual([]);
  const [eventId] = await db.eventIds();

  // Killed in the reactors' sleep: after 'started' and the effect (made by the first worker, a
  // no-op for the second), before 'done'.
  const killMidJob = async (worker: ChildApp) => {
    await waitFor(
      `${worker.name} to be in both jobs`,
      async () => (await db.runs('started')).filter((run) => run.pid === worker.pid).length === 2 && (await db.effects()).size === 2,
      20_000,
    );
    await worker.kill('SIGKILL');
    recordFigure('processes killed', 1);
    // Still locked by the dead worker: only the lock's expiry tells anyone.
    expect((await jobCounts(queue)).active).toBe(2);
  };
  await killMidJob(first);
  const [second, third] = await later;
  await second.request({ cmd: 'worker', concurrency: 2, ...doomed });
  await killMidJob(second);
  await third.request({ cmd: 'worker', concurrency: 2, ...rescuer });
  await waitFor('both jobs finished', async () => {
    const counts = await jobCounts(queue);
    return counts.completed + counts.failed === 2;
  }, 20_000);
  await closeAndExpectExit(third);

  const jobs = await Promise.all(
    (await allJobs(queue)).map(async (job) => ({
      reactor: job.data.reactor,
      state: await job.getState(),
      stalledCounter: job.stalledCounter,
      attemptsMade: job.attemptsMade,
      failedReason: job.failedReason,
    })),
  );
  jobs.sort((a, b) => a.reactor.localeCompare(b.reactor));
  const runs = (await db.runs()).map((run) => ({ reactor: run.reactor, phase: run.phase, pid: run.pid, attempt: run.attempt, eventId: run.eventId }));
  expect(third.errors).toEqual([]);
  return { context, eventId, workers: [first, second, third], jobs, runs };
}

test('a worker SIGKILLed mid-job twice in a row: the third worker completes the jobs (stalls do not use up attempts)', async () => {
  // The same crashes with BullMQ's own maxStalledCount (1), run beside it: the second stall fails the jobs.
  const [run, control] = await Promise.all([killWorkerTwice('stall_twice', {}), killWorkerTwice('stall_twice_control', { maxStalledCount: 1 })]);
  const [first, second, third] = run.workers.map((worker) => worker.pid);

  // Both jobs completed after two stalls, on their first attempt: no retry, no failure.
  expect(run.jobs).toEqual(
    [...reactorNames].sort().map((reactor) => ({ reactor, state: 'completed', stalledCounter: 2, attemptsMade: 1, failedReason: undefined })),
  );
  // Each reactor started in all three workers and finished once, in the third; the effect was made
  // once, by the first run, and the reruns' attempts at it changed nothing.
  for (const reactor of reactorNames) {
    expect(run.runs.filter((entry) => entry.reactor === reactor)).toEqual([
      { reactor, phase: 'started', pid: first, attempt: 1, eventId: run.eventId },
      { reactor, phase: 'started', pid: second, attempt: 1, eventId: run.eventId },
      { reactor, phase: 'started', pid: third, attempt: 1, eventId: run.eventId },
      { reactor, phase: 'done', pid: third, attempt: 1, eventId: run.eventId },
    ]);
  }
  expect(await run.context.db.effects()).toEqual(new Map(reactorNames.map((reactor) => [`${run.eventId}/${reactor}`, first])));
  expect(await run.context.db.outboxCount()).toBe(0);
  expect(await jobCounts(run.context.queue)).toEqual(onlyCompleted(2));
  expect(await run.context.db.jobIds(run.context.queue, reactorNames)).toHaveLength(2);

  // The control: the old failure mode, a job lost to the failed set after two crashes, its reactor never done.
  expect(control.jobs).toEqual(
    [...reactorNames].sort().map((reactor) => ({
      reactor,
      state: 'failed',
      stalledCounter: 2,
      attemptsMade: expect.any(Number),
      failedReason: 'job stalled more than allowable limit',
    })),
  );
  expect(control.runs.filter((entry) => entry.phase === 'done')).toEqual([]);

  recordFigure('crash points', 1);
  recordFigure('events committed', 1);
  recordFigure('jobs lost', 2 - (await jobCounts(run.context.queue)).completed);
  recordFigure('duplicate effects', run.runs.filter((entry) => entry.phase === 'done').length - 2);
}, 90_000);
