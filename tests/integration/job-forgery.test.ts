import { activateNewSubscription } from '../support/activated-subscription';
import { createHmac, randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, type ReactorContext } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { obliterateQueue, waitFor } from '../support/processes';
import {
  SubscriptionActivated,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';

/**
 * Defect 3 of the hardening issue: a worker ran whatever job it found in the queue. Anyone who
 * could write to Redis could make a reactor run on any event (send a mail twice, charge a card
 * again), or point a real job at another event. Jobs are now HMAC-signed with a secret kept in
 * PostgreSQL, and the worker also checks the job against the event row and the dispatcher; a job
 * failing a check is refused as unrecoverable (failed at once, its attempts not used).
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `defects-job-forgery-${process.pid}-${Date.now()}`;
const table = 'subscription_events';

const runs: { reactor: string; eventId: number; jobId: string | undefined }[] = [];

function Confirm(event: SubscriptionActivated, ctx: ReactorContext) {
  runs.push({ reactor: ctx.reactor, eventId: event.id, jobId: ctx.job?.id });
}
function NoteAudit(event: SubscriptionNoteAdded, ctx: ReactorContext) {
  runs.push({ reactor: ctx.reactor, eventId: event.id, jobId: ctx.job?.id });
}

let dataSource: DataSource;
let es: EventSourcing;
let worker: Worker;
let identity: string;
let secret: string;

beforeAll(async () => {
  dataSource = await testDataSource(`defects_job_forgery_${process.pid}`, subscriptionEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Confirm }).on(SubscriptionNoteAdded, { async: NoteAudit }),
    queue: { connection: redisUrl, name: queueName },
  });
  // What someone with read access to the database has; Redis alone never holds the secret.
  [{ identity, secret }] = await dataSource.query('SELECT id::text AS identity, secret FROM es_identity');
  worker = es.worker({ relay: false });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  await obliterateQueue(queueName, redisUrl);
});

const activate = (stripeKey: string) => activateNewSubscription(dataSource, stripeKey);

interface JobFields {
  table: string;
  id: number;
  type: string;
  reactor: string;
  position: number;
  key: string;
}

/** The signature as src/reactors/job-signature.ts makes it, computed here without the library's code. */
function sign(jobId: string, fields: JobFields): string {
  const canonical = JSON.stringify([jobId, fields.table, fields.id, fields.type, fields.reactor, fields.position, fields.key]);
  return createHmac('sha256', secret).update(canonical).digest('hex');
}

/** Adds a job straight to Redis, as anyone who can reach it could; three attempts, so a retry would show. */
async function addByHand(jobId: string, data: Record<string, unknown>): Promise<void> {
  await es.queue.add(String(data.reactor ?? 'Confirm'), data, { jobId, attempts: 3, backoff: { type: 'fixed', delay: 10 } });
}

/** Waits until every job has finished (failed or, had it run, completed), and returns how. */
async function outcomesOf(jobIds: string[]): Promise<Array<{ state: string; attemptsMade: number; failedReason: string | undefined }>> {
  await waitFor('the jobs to finish', async () => {
    const states = await Promise.all(jobIds.map((id) => es.queue.getJobState(id)));
    return states.every((state) => state === 'failed' || state === 'completed');
  }, 15_000, 50);
  return Promise.all(
    jobIds.map(async (id) => {
      const job = (await es.queue.getJob(id))!;
      return { state: await job.getState(), attemptsMade: job.attemptsMade, failedReason: job.failedReason };
    }),
  );
}

const notSigned = (jobId: string) => `job ${jobId} is not signed by this database: its data or id was changed, or it was added by someone else`;

test('a real job runs once; forged and tampered jobs are refused as unrecoverable and never reach a reactor', async () => {
  const a = await activate('sub_a');
  const b = await activate('sub_b');
  // Real events whose jobs are tampered with below, one field each.
  const victims = [await activate('sub_t1'), await activate('sub_t2'), await activate('sub_t3'), await activate('sub_t4')];
  await waitForReactors(es);
  const real = [a, b, ...victims];
  expect(runs.map((run) => [run.reactor, run.eventId])).toEqual(real.map((event) => ['Confirm', event.id]));
  const completed = await es.queue.getJobs(['completed']);
  const realJob = (event: SubscriptionActivated) => completed.find((job) => job.data.id === event.id)!;
  const realA = realJob(a);
  expect(realA.id).toBe(`${identity}.${a.position}.Confirm.${realA.data.key}`);
  const realRuns = runs.map((run) => ({ ...run }));

  const forged: Array<{ what: string; jobId: string; reason: string }> = [];
  const forge = async (what: string, jobId: string, data: Record<string, unknown>, reason: string) => {
    await addByHand(jobId, data);
    forged.push({ what, jobId, reason });
  };

  // (a) A real job's data, signature included, under a new id with this database's prefix.
  const copiedId = `${identity}.${a.position}.Confirm.${randomUUID()}`;
  await forge('copied under a new id', copiedId, { ...realA.data }, notSigned(copiedId));

  // (b) A real job's id and signature, one field of its data changed to aim it elsewhere. BullMQ
  // ignores an add under an existing id, so the completed job is removed first.
  const tampered: Array<[string, SubscriptionActivated, Record<string, unknown>]> = [
    ['id moved to another event', a, { id: b.id, position: b.position }],
    ['table changed', victims[0], { table: 'subscription_events_archive' }],
    ['type changed', victims[1], { type: 'Subscription.NoteAdded' }],
    ['reactor changed', victims[2], { reactor: 'NoteAudit' }],
    ['position changed', victims[3], { position: b.position }],
  ];
  for (const [what, event, changes] of tampered) {
    const job = realJob(event);
    await job.remove();
    await forge(what, job.id!, { ...job.data, ...changes }, notSigned(job.id!));
  }

  // (c) No signature at all, and a signature that is not even hex.
  const unsignedKey = randomUUID();
  const unsignedId = `${identity}.${a.position}.Confirm.${unsignedKey}`;
  await forge('unsigned', unsignedId, { table, id: a.id, type: a.type, reactor: 'Confirm', position: a.position, key: unsignedKey }, notSigned(unsignedId));
  const garbledKey = randomUUID();
  const garbledId = `${identity}.${a.position}.Confirm.${garbledKey}`;
  await forge(
    'garbled signature',
    garbledId,
    { table, id: a.id, type: a.type, reactor: 'Confirm', position: a.position, key: garbledKey, signature: 'x'.repeat(64) },
    notSigned(garbledId),
  );

  // With the secret (database access), signatures are right: the worker's other checks refuse.
  const signed = async (what: string, fields: Omit<JobFields, 'key' | 'table'>, reason: (jobId: string) => string) => {
    const key = randomUUID();
    const all: JobFields = { table, key, ...fields };
    const jobId = `${identity}.${fields.position}.${fields.reactor}.${key}`;
    await forge(what, jobId, { ...all, signature: sign(jobId, all) }, reason(jobId));
  };
  // (d) A reactor that exists, but not for this event's type.
  await signed('reactor not registered for the type', { id: a.id, type: a.type, reactor: 'NoteAudit', position: a.position }, (jobId) => `reactor 'NoteAudit' is not registered for Subscription.Activated (job ${jobId})`);
  // (e) A row that exists, named with another type, or with another position.
  await signed(
    'another type',
    { id: a.id, type: 'Subscription.NoteAdded', reactor: 'NoteAudit', position: a.position },
    (jobId) =>
      `${table} row ${a.id} is not the event job ${jobId} was added for (it is Subscription.Activated at position ${a.position}, the job names Subscription.NoteAdded at position ${a.position}): the table was reset or restored`,
  );
  await signed(
    'another position',
    { id: a.id, type: a.type, reactor: 'Confirm', position: b.position },
    (jobId) =>
      `${table} row ${a.id} is not the event job ${jobId} was added for (it is Subscription.Activated at position ${a.position}, the job names Subscription.Activated at position ${b.position}): the table was reset or restored`,
  );
  // A row that does not exist, and a reactor nobody registered.
  await signed('no such row', { id: 999_999, type: a.type, reactor: 'Confirm', position: a.position }, (jobId) => `${table} row 999999 does not exist (job ${jobId})`);
  await signed(
    'unknown reactor',
    { id: a.id, type: a.type, reactor: 'ChargeCard', position: a.position },
    (jobId) => `no async reactor named 'ChargeCard' is registered with the dispatcher (job ${jobId})`,
  );
  // Another database's prefix: refused before anything else is looked at.
  const foreignId = `${randomUUID()}.${a.position}.Confirm.${randomUUID()}`;
  await forge(
    'another database',
    foreignId,
    { ...realA.data },
    `job ${foreignId} was added by another database than this worker's (${identity}): give each database a queue name of its own`,
  );

  const outcomes = await outcomesOf(forged.map((job) => job.jobId));
  expect(forged.map((job, index) => ({ what: job.what, ...outcomes[index] }))).toEqual(
    forged.map((job) => ({ what: job.what, state: 'failed', attemptsMade: 1, failedReason: job.reason })),
  );
  // Only the real runs, each under its own job: not one forged job reached a reactor.
  expect(runs).toEqual(realRuns);
  expect(realRuns.map((run) => run.jobId)).toEqual(real.map((event) => realJob(event).id));
  recordFigure('forged reactor jobs refused', forged.length);

  // The worker is still at work: a real job after all that runs once.
  const c = await activate('sub_c');
  await waitForReactors(es, { allowFailures: true }); // the forged jobs above failed on purpose
  expect(runs.slice(realRuns.length).map((run) => [run.reactor, run.eventId])).toEqual([['Confirm', c.id]]);
  expect(worker.isRunning()).toBe(true);
});
