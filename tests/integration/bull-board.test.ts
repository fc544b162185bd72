import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, EventSourcingConfigError, UsageError } from 'typeorm-event-sourcing';
import { bullBoardAdapter } from 'typeorm-event-sourcing/bull-board';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { queuesForBullBoard } from '../../examples/docs/bull-board';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionActivated, SubscriptionCreated, subscriptionEntities } from '../support/subscription-model';

/** The reactor queue in bull-board: jobs named `Reactor <- Event.Type`, linked to their event. */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `es-bull-board-${process.pid}-${Date.now()}`;

function SubscriptionConfirmation() {}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('bull_board', subscriptionEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: SubscriptionConfirmation }),
    queue: { connection: redisUrl, name: queueName },
  });
});

afterAll(async () => {
  await es?.queue.obliterate({ force: true }).catch(() => undefined);
  await es?.close();
  await dataSource?.destroy();
});

test('jobs are named after their reactor and event type, and link to the event page', async () => {
  const created = await es.append(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }));
  const worker = es.worker();
  try {
    await waitForReactors(es);
  } finally {
    await worker.close();
  }
  const adapter = bullBoardAdapter(es, { eventUrl: (event) => `/events/${event.table}/${event.id}?type=${encodeURIComponent(event.type)}` });
  expect(adapter.getName()).toBe(queueName);
  expect(adapter.getDescription()).toBe('Async reactors of typeorm-event-sourcing');
  expect(adapter.readOnlyMode).toBe(false);
  const jobs = await adapter.getJobs(['completed']);
  expect(jobs).toHaveLength(1);
  const job = jobs[0].toJSON();
  expect(adapter.format('name', job, job.name)).toBe('SubscriptionConfirmation <- Subscription.Activated');
  expect(adapter.externalJobUrl!(job as never)).toEqual({
    href: `/events/subscription_events/${activated.id}?type=Subscription.Activated`,
    displayText: `Subscription.Activated subscription_events/${activated.id}`,
  });
  expect(bullBoardAdapter(es, { readOnly: true, description: 'Reactors' })).toMatchObject({ readOnlyMode: true, description: 'Reactors' });
  expect(bullBoardAdapter(es).externalJobUrl).toBeUndefined();
  // The example of docs/observability.md.
  const [documented] = queuesForBullBoard(es);
  expect(documented.format('name', job, job.name)).toBe('SubscriptionConfirmation <- Subscription.Activated');
  expect(documented.externalJobUrl!(job as never).href).toBe(`/admin/events/subscription_events/${activated.id}`);
});

test('a job of some other producer keeps its own name; bad options and a missing queue are refused by name', async () => {
  const adapter = bullBoardAdapter(es);
  expect(adapter.format('name', { name: 'cleanup', data: { what: 'else' } }, 'cleanup')).toBe('cleanup');
  const bad = await rejectionOf((async () => bullBoardAdapter(es, { eventUrl: '/events' as never }))());
  expect(bad).toBeInstanceOf(UsageError);
  expect((bad as Error).message).toBe('bullBoardAdapter: eventUrl must be a function, got string');
  const noQueue = await testDataSource('bull_board_no_queue', subscriptionEntities);
  const without = await EventSourcing.attach(noQueue);
  try {
    const error = await rejectionOf((async () => bullBoardAdapter(without))());
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect((error as Error).message).toBe('no queue is configured: pass { queue } to EventSourcing.attach');
  } finally {
    await without.close();
    await noQueue.destroy();
  }
});
