import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing } from 'typeorm-event-sourcing';
import { resetEventStore } from 'typeorm-event-sourcing/testing';
import { jobKeyOf } from '../../src/reactors/outbox';
import { jobsOfEvent, type EventJob } from '../../src/reactors/event-jobs';
import { activateNewSubscription } from '../support/activated-subscription';
import { testDataSource } from '../support/database';
import { obliterateQueue, waitFor } from '../support/processes';
import { Subscription, SubscriptionActivated, SubscriptionCreated, subscriptionEntities, SubscriptionNoteAdded } from '../support/subscription-model';
import { runReactors } from '../support/run-reactors';

/**
 * An event's jobs are found in the queue from the event row alone: each outbox row's job key is a
 * hash of the events table, the event id, the writing transaction's id and the reactor, so the
 * event browser (and anyone reading the row) computes the job ids again, on every write path.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `event-jobs-${process.pid}-${Date.now()}`;

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource(`event_jobs_${process.pid}`, subscriptionEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher()
      .on(SubscriptionActivated, { async: function Receipt() {} })
      .on(SubscriptionActivated, {
        async: function Crm(event: SubscriptionActivated) {
          if (event.stripeKey.startsWith('bad')) throw new Error(`CRM refused "${event.stripeKey}"`);
        },
        attempts: 2,
        backoff: 10,
      })
      .on(SubscriptionCreated, { trigger: function Audit() {} }),
    queue: { connection: redisUrl, name: queueName, keepOutboxUntil: 'completed' },
  });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  await obliterateQueue(queueName, redisUrl);
});

const row = async (event: SubscriptionActivated | SubscriptionCreated) => {
  const [stored] = await dataSource.query(`SELECT id, position::text AS position, tx_id::text AS "txId", type FROM subscription_events WHERE id = $1`, [event.id]);
  return { table: 'subscription_events', ...stored };
};
const summary = (jobs: EventJob[]) => jobs.map(({ reactor, state, attemptsMade, failedReason }) => ({ reactor, state, attemptsMade, failedReason }));

test('outbox rows of the locked and the fast path carry the job key computed from the event row', async () => {
  await resetEventStore(es);
  const locked = await activateNewSubscription(dataSource, 'locked');
  const created = await es.append(SubscriptionCreated.build({ userId: 2 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const fast = await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'fast' }));
  const outbox: { event_id: string; reactor: string; job_key: string }[] = await dataSource.query(
    'SELECT event_id::text, reactor, job_key::text FROM es_outbox ORDER BY event_id, reactor',
  );
  expect(outbox).toHaveLength(4);
  for (const event of [locked, fast]) {
    const stored = await row(event);
    for (const reactor of ['Crm', 'Receipt']) {
      expect(outbox.find((r) => r.event_id === String(event.id) && r.reactor === reactor)?.job_key).toBe(jobKeyOf(stored, reactor));
    }
  }
  expect(new Set(outbox.map((r) => r.job_key)).size).toBe(4);
});

test('jobsOfEvent: waiting before a worker runs, then completed or failed with the reason and attempts', async () => {
  await resetEventStore(es);
  const good = await activateNewSubscription(dataSource, 'good');
  const bad = await activateNewSubscription(dataSource, 'bad "<key>"');
  // Handed over (kept in the outbox until completed, marked enqueued), and no worker yet.
  await waitFor('the hand-over', async () => (await dataSource.query('SELECT count(*)::int AS n FROM es_outbox WHERE enqueued_at IS NULL'))[0].n === 0, 10_000, 20);
  expect(summary(await jobsOfEvent(es, await row(good)))).toEqual([
    { reactor: 'Receipt', state: 'waiting', attemptsMade: 0, failedReason: undefined },
    { reactor: 'Crm', state: 'waiting', attemptsMade: 0, failedReason: undefined },
  ]);
  await runReactors(es, { timeout: 15_000, allowFailures: true });
  expect(summary(await jobsOfEvent(es, await row(good)))).toEqual([
    { reactor: 'Receipt', state: 'completed', attemptsMade: 1, failedReason: undefined },
    { reactor: 'Crm', state: 'completed', attemptsMade: 1, failedReason: undefined },
  ]);
  const badJobs = await jobsOfEvent(es, await row(bad));
  expect(summary(badJobs)).toEqual([
    { reactor: 'Receipt', state: 'completed', attemptsMade: 1, failedReason: undefined },
    { reactor: 'Crm', state: 'failed', attemptsMade: 2, failedReason: 'CRM refused "bad "<key>""' },
  ]);
  expect(badJobs[1].finishedOn).toBeInstanceOf(Date);
  expect((await es.queue.getJob(badJobs[1].jobId))?.data).toMatchObject({ id: bad.id, reactor: 'Crm' });
});

test('jobsOfEvent: missing jobs, events without async reactors and unknown tables or types', async () => {
  await resetEventStore(es);
  const created = await es.append(SubscriptionCreated.build({ userId: 3 }));
  expect(await jobsOfEvent(es, await row(created))).toEqual([]);
  const activated = await activateNewSubscription(dataSource, 'gone');
  await es.queue.obliterate({ force: true });
  const jobs = await jobsOfEvent(es, await row(activated));
  expect(jobs.map(({ reactor, state }) => ({ reactor, state }))).toEqual([
    { reactor: 'Receipt', state: 'missing' },
    { reactor: 'Crm', state: 'missing' },
  ]);
  expect(await jobsOfEvent(es, { ...(await row(activated)), table: 'no_such_events' })).toEqual([]);
  expect(await jobsOfEvent(es, { ...(await row(activated)), type: SubscriptionNoteAdded.name })).toEqual([]);
});
