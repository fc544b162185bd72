import { activateNewSubscription } from '../support/activated-subscription';
import type { Job, Worker } from 'bullmq';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, type ReactorContext } from 'typeorm-event-sourcing';
import { resetEventStore, waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { obliterateQueue, waitFor } from '../support/processes';
import { SubscriptionActivated, subscriptionEntities } from '../support/subscription-model';

/**
 * Defect 2 of the hardening issue: a job id was `${identity}.${position}.${reactor}`, so an id
 * could come back for another event. After the position sequence was reset (a restore, a
 * `setval`), BullMQ silently dropped the new events' jobs as duplicates of completed ones; after a
 * table reset (TRUNCATE ... RESTART IDENTITY), a job of an old event still waiting or retrying
 * ran its reactor on the new event that took over the row id. Now every outbox row has a random
 * key in the job id, and the worker checks the row's position and type against the job.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `defects-job-identity-${process.pid}-${Date.now()}`;

interface Run {
  eventId: number;
  position: number;
  stripeKey: string;
  jobId: string | undefined;
  attempt: number;
}
const runs: Run[] = [];

/** Fails its first attempt for stripe keys starting with 'retry', so the job waits in the delayed set. */
function Confirm(event: SubscriptionActivated, ctx: ReactorContext) {
  runs.push({ eventId: event.id, position: event.position, stripeKey: event.stripeKey, jobId: ctx.job?.id, attempt: ctx.attempt });
  if (event.stripeKey.startsWith('retry') && ctx.attempt === 1) throw new Error(`first attempt of ${event.stripeKey} fails`);
}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource(`defects_job_identity_${process.pid}`, subscriptionEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Confirm, backoff: 1500 }),
    queue: { connection: redisUrl, name: queueName },
  });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  await obliterateQueue(queueName, redisUrl);
});

beforeEach(() => {
  runs.length = 0;
});

const activate = (stripeKey: string) => activateNewSubscription(dataSource, stripeKey);

async function jobsOf(event: SubscriptionActivated): Promise<Job[]> {
  const jobs = await es.queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']);
  return jobs.filter((job) => job.data.id === event.id && job.data.position === event.position);
}

/** Waits until the after-commit hand-over has put every outbox row in the queue. */
async function handedOver(): Promise<void> {
  await waitFor('the outbox to be handed to the queue', async () => {
    const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM es_outbox');
    return count === 0;
  }, 10_000, 20);
}

test('after the position sequence is reset, events that reuse positions still get their jobs, each run once', async () => {
  const worker = es.worker({ relay: false });
  try {
    const before = [await activate('before-1'), await activate('before-2')];
    await waitForReactors(es);
    expect(runs.map((run) => run.eventId)).toEqual(before.map((event) => event.id));
    for (const event of before) expect(await Promise.all((await jobsOf(event)).map((job) => job.getState()))).toEqual(['completed']);
    const jobIdsBefore = runs.map((run) => run.jobId);

    // A restore of an older dump, or a careless setval: positions start over while the completed
    // jobs of the first events are still kept in Redis under their ids.
    await dataSource.query(`SELECT setval('es_event_position', 1, false)`);
    runs.length = 0;
    const after = [await activate('after-1'), await activate('after-2')];
    await waitForReactors(es);

    // The same positions as the completed events, so an id made of position and reactor collides.
    expect(after.map((event) => event.position)).toEqual(before.map((event) => event.position));
    expect(runs.map((run) => [run.eventId, run.stripeKey])).toEqual(after.map((event) => [event.id, event.stripeKey]));
    for (const event of after) {
      const jobs = await jobsOf(event);
      expect(jobs).toHaveLength(1);
      expect(await jobs[0].getState()).toBe('completed');
    }
    expect(new Set([...jobIdsBefore, ...runs.map((run) => run.jobId)]).size).toBe(4);
    recordFigure('events written over reused positions', 2);
  } finally {
    await worker.close();
  }
});

test('after resetEventStore, a waiting and a retrying job of old events are refused by the new rows, which run their own jobs once', async () => {
  await resetEventStore(es);
  // The retrying job: its first attempt fails, then it waits for its retry.
  // The 1.5 s backoff leaves time to close the worker before the retry is due.
  let worker: Worker = es.worker({ relay: false });
  const retrying = await activate('retry-old');
  await waitFor('the first attempt to fail', async () => (await jobsOf(retrying))[0]?.attemptsMade === 1, 10_000, 20);
  await worker.close();
  // The waiting job: no worker runs while it is added.
  const waiting = await activate('waiting-old');
  await handedOver();
  const [retryJob] = await jobsOf(retrying);
  const [waitJob] = await jobsOf(waiting);
  // Delayed until a worker promotes it, or already promoted: either way a retry, not yet run.
  expect(['delayed', 'waiting']).toContain(await retryJob.getState());
  expect(retryJob.attemptsMade).toBe(1);
  expect(await waitJob.getState()).toBe('waiting');
  expect(waitJob.attemptsMade).toBe(0);

  await resetEventStore(es);
  // The same row ids (2 and 4) are activations again, at new positions.
  const fresh = [await activate('retry-new'), await activate('waiting-new')];
  expect(fresh.map((event) => event.id)).toEqual([retrying.id, waiting.id]);
  await handedOver();
  runs.length = 0;

  worker = es.worker({ relay: false });
  try {
    await waitFor('both old jobs to fail', async () => (await retryJob.getState()) === 'failed' && (await waitJob.getState()) === 'failed', 15_000, 50);
    await waitForReactors(es, { timeout: 15_000, allowFailures: true }); // the old jobs are refused on purpose
  } finally {
    await worker.close();
  }

  // Refused as unrecoverable: no attempt left for later, whatever the job had left.
  for (const [job, old, now, attemptsMade] of [
    [retryJob, retrying, fresh[0], 2],
    [waitJob, waiting, fresh[1], 1],
  ] as const) {
    const failed = (await es.queue.getJob(job.id!))!;
    expect(failed.attemptsMade).toBe(attemptsMade);
    expect(failed.failedReason).toBe(
      `subscription_events row ${old.id} is not the event job ${job.id} was added for (it is Subscription.Activated at position ${now.position}, the job names Subscription.Activated at position ${old.position}): the table was reset or restored`,
    );
  }
  // The old jobs never reached the reactor; each new event ran its own job, once.
  const onNewRows = runs.filter((run) => run.jobId === retryJob.id || run.jobId === waitJob.id);
  expect(onNewRows).toEqual([]);
  expect(runs.filter((run) => run.stripeKey === 'waiting-new').map((run) => run.position)).toEqual([fresh[1].position]);
  // 'retry-new' fails its first attempt too, then completes.
  expect(runs.filter((run) => run.stripeKey === 'retry-new').map((run) => run.attempt)).toEqual([1, 2]);
  for (const event of fresh) expect(await (await jobsOf(event))[0].getState()).toBe('completed');
  recordFigure('stale jobs refused after a table reset', 2);
});
