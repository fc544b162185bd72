import type { Queue } from 'bullmq';
import type { WriterStats } from '../processes/outage-app';
import { childProcessHooks } from '../support/child-hooks';
import { recordFigure } from '../support/figures';
import { completedJobs, expectedPairs, OutageDatabase, sleep } from '../support/outages';
import { PrivatePostgres } from '../support/private-postgres';
import {
  ChildApp,
  closeAndExpectExit,
  disposeQueue,
  inspectQueue,
  jobCounts,
  killChildren,
  onlyCompleted,
  sharedRedisUrl,
  uniqueQueueName,
  waitFor,
} from '../support/processes';

/**
 * PostgreSQL restarted under running processes: writes in flight fail with named, retryable
 * errors and leave no half-written event and no instance ahead of its row; the processes carry
 * on by themselves once the server is back; every job of every committed event runs once, even
 * when the server stays away longer than a job's retries would last.
 */

/** What a write may fail with while the server goes away and comes back. */
const NAMED_ERRORS = ['ConnectionLostError', 'ConcurrencyError'];
const ORDERS_PER_WRITER = 3;

let pg: PrivatePostgres;
let db: OutageDatabase | undefined;
let queue: Queue | undefined;

childProcessHooks({
  setup: async () => {
    pg = await PrivatePostgres.create();
    await pg.start();
  },
  teardown: async () => {
    await pg?.dispose();
  },
});

afterEach(async () => {
  await killChildren();
  await pg.start(); // a failed test may have left it stopped
  await disposeQueue(queue);
  await db?.close();
  queue = undefined;
  db = undefined;
});

function appEnv(queueName: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: db!.url, REDIS_URL: sharedRedisUrl(), QUEUE_NAME: queueName, RELAY_GRACE: '300', RELAY_INTERVAL: '200', ...extra };
}

/** Reactor runs per `${eventId}/${reactor}`, in order, with their job and time (ms since the epoch). */
async function runsByPair(database: OutageDatabase): Promise<Map<string, Array<{ jobId: string; at: number }>>> {
  const rows: Array<{ pair: string; jobId: string; at: number }> = await database.dataSource.query(
    `SELECT event_id || '/' || reactor AS pair, job_id AS "jobId", (extract(epoch FROM at) * 1000)::float8 AS at FROM reactor_runs ORDER BY id`,
  );
  const runs = new Map<string, Array<{ jobId: string; at: number }>>();
  for (const { pair, jobId, at } of rows) runs.set(pair, [...(runs.get(pair) ?? []), { jobId, at }]);
  return runs;
}

async function stats(writer: ChildApp, cmd: 'stats' | 'stop-loop' = 'stats'): Promise<WriterStats> {
  return (await writer.request({ cmd }, 60_000)) as unknown as WriterStats;
}

test('writers and a worker across an immediate PostgreSQL restart: named errors, no half-written event, no instance ahead of its row, writes resume by themselves, every job of every committed event completes once', async () => {
  db = await OutageDatabase.create('pg_restart_writers', pg.url);
  const queueName = uniqueQueueName('pg-restart');
  queue = inspectQueue(queueName, sharedRedisUrl());
  const [appender, commander, worker] = await Promise.all(['appender', 'commander', 'worker'].map((name) => ChildApp.start(name, 'outage-app', appEnv(queueName))));
  await worker.request({ cmd: 'worker', concurrency: 4 });
  const writers = [appender, commander];
  for (const writer of writers) await writer.request({ cmd: 'create', count: ORDERS_PER_WRITER });
  await appender.request({ cmd: 'write-loop', mode: 'append' });
  await commander.request({ cmd: 'write-loop', mode: 'command' });

  await waitFor('writes before the outage', async () => (await Promise.all(writers.map((writer) => stats(writer)))).every((s) => s.committed >= 10), 20_000);
  // A crash: no checkpoint, transactions in flight aborted, the WAL replayed on start.
  const stopAt = Date.now();
  await pg.stop('immediate');
  const stoppedAt = Date.now();
  // Down for this long plus the start-up (a few seconds): every writer meets the outage.
  await sleep(1500);
  await pg.start();
  const downFor = Date.now() - stoppedAt;

  // Recovery without restarting anything: each writer commits again, and keeps doing so.
  const atRestart = await Promise.all(writers.map((writer) => stats(writer)));
  await waitFor(
    'writes after the restart',
    async () => (await Promise.all(writers.map((writer) => stats(writer)))).every((s, index) => s.committed >= atRestart[index].committed + 10),
    30_000,
  );
  const final = await Promise.all(writers.map((writer) => stats(writer, 'stop-loop')));

  for (const [index, s] of final.entries()) {
    const context = `${writers[index].name}: ${JSON.stringify(s, null, 1)}`;
    expect({ context, raw: s.raw }).toEqual({ context, raw: [] });
    expect({ context, violations: s.violations, unhandled: s.unhandled }).toEqual({ context, violations: [], unhandled: [] });
    expect({ context, classes: Object.keys(s.errors).filter((name) => !NAMED_ERRORS.includes(name)) }).toEqual({ context, classes: [] });
    if (s.errors.ConnectionLostError) expect(s.samples.ConnectionLostError).toMatch(/^Order \d+: the database connection was lost during the write/);
  }
  // The outage did reach the writes.
  expect(final.reduce((sum, s) => sum + Object.values(s.errors).reduce((a, b) => a + b, 0), 0)).toBeGreaterThan(0);

  // No half-written pair: every row is its replay, versions count its events from 1.
  expect(await db.verify()).toEqual([]);
  const histories = await db.orderHistories();
  expect(histories).toHaveLength(2 * ORDERS_PER_WRITER);
  for (const history of histories) expect(history).toEqual({ ...history, events: history.version, first: 1, last: history.version });
  // Every resolved write is in the database; beyond those, only writes whose COMMIT happened but
  // whose answer was lost, reported as ConnectionLostError (the writer found its row one version on).
  const eventIds = await db.eventIds();
  const writes = eventIds.length - histories.length;
  const committed = final.reduce((sum, s) => sum + s.committed, 0);
  const inDoubt = final.reduce((sum, s) => sum + (s.errors.ConnectionLostError ?? 0), 0);
  expect(writes).toBeGreaterThanOrEqual(committed);
  expect(writes).toBeLessThanOrEqual(committed + inDoubt);

  // Every job of every committed event, once; none failed.
  await waitFor('every job completed and an empty outbox', async () => (await jobCounts(queue!)).completed === 2 * eventIds.length && (await db!.outboxCount()) === 0, 45_000);
  const jobs = await completedJobs(queue);
  expect(jobs.map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  expect(await jobCounts(queue)).toEqual(onlyCompleted(2 * eventIds.length));
  // Each (event, reactor) ran, by its one job. Delivery is at least once (docs/reactors.md): a
  // reactor whose INSERT reached the WAL just before the crash, its answer lost, runs again. Any
  // repeat must be that: the same job, first run at the moment the server stopped.
  const runs = await runsByPair(db);
  expect([...runs.keys()].sort()).toEqual(expectedPairs(eventIds));
  const jobIdOf = new Map(jobs.map((job) => [job.pair, job.id]));
  let repeated = 0;
  for (const [pair, pairRuns] of runs) {
    expect({ pair, jobIds: [...new Set(pairRuns.map((run) => run.jobId))] }).toEqual({ pair, jobIds: [jobIdOf.get(pair)] });
    if (pairRuns.length === 1) continue;
    repeated += pairRuns.length - 1;
    expect({ pair, runs: pairRuns.length, firstRunAtTheCrash: pairRuns[0].at >= stopAt - 1000 && pairRuns[0].at <= stoppedAt }).toEqual({ pair, runs: 2, firstRunAtTheCrash: true });
  }
  await Promise.all([...writers, worker].map(closeAndExpectExit));

  recordFigure('outages injected', 1);
  recordFigure('server restarts', 1);
  recordFigure('PostgreSQL down', downFor / 1000, 's');
  recordFigure('writers', writers.length);
  recordFigure('writes attempted', final.reduce((sum, s) => sum + s.attempted, 0));
  recordFigure('writes committed', writes);
  for (const s of final) for (const [name, count] of Object.entries(s.errors)) recordFigure(`writes rejected with ${name}`, count);
  recordFigure('writes committed although reported lost', writes - committed);
  recordFigure('events lost', Math.max(0, committed - writes));
  recordFigure('jobs lost', 2 * eventIds.length - jobs.length);
  recordFigure('reactor runs repeated after the crash (at least once)', repeated);
}, 120_000);

test("a PostgreSQL outage longer than a job's retries: no job ends failed, all complete once the server is back", async () => {
  db = await OutageDatabase.create('pg_restart_retries', pg.url);
  const queueName = uniqueQueueName('pg-retries');
  queue = inspectQueue(queueName, sharedRedisUrl());
  // Three attempts 200 ms apart (doubling) would be used up in well under 2 s.
  const app = await ChildApp.start('app', 'outage-app', appEnv(queueName, { ATTEMPTS: '3', BACKOFF: '200' }));
  await app.request({ cmd: 'create', count: 10 });
  await waitFor('20 waiting jobs', async () => (await jobCounts(queue!)).waiting === 20 && (await db!.outboxCount()) === 0, 10_000);
  const eventIds = await db.eventIds();

  await pg.stop('fast');
  const downAt = Date.now();
  await app.request({ cmd: 'worker' });
  // The jobs are due and tried while the server is away, for three times as long as their retries last.
  while (Date.now() - downAt < 6000) {
    const counts = await jobCounts(queue);
    expect({ failed: counts.failed, completed: counts.completed }).toEqual({ failed: 0, completed: 0 });
    await sleep(250);
  }
  const tried = await queue.getJobs(['delayed', 'waiting', 'active']);
  expect(tried.some((job) => (job.attemptsStarted ?? 0) > 0)).toBe(true);
  await pg.start();
  const downFor = Date.now() - downAt;

  await waitFor('20 completed jobs', async () => (await jobCounts(queue!)).completed === 20, 30_000);
  expect(await db.runPairs()).toEqual(expectedPairs(eventIds));
  expect(await jobCounts(queue)).toEqual(onlyCompleted(20));
  const jobs = await completedJobs(queue);
  expect(jobs.map((job) => job.pair)).toEqual(expectedPairs(eventIds));
  // Started more often than three attempts allow, yet never counted as failed attempts.
  expect(Math.max(...jobs.map((job) => job.attemptsStarted))).toBeGreaterThan(3);
  expect(await db.outboxCount()).toBe(0);
  await closeAndExpectExit(app);

  recordFigure('outages injected', 1);
  recordFigure('server restarts', 1);
  recordFigure('PostgreSQL down', downFor / 1000, 's');
  recordFigure('jobs lost', 20 - jobs.length);
}, 90_000);
