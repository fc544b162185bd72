import type { DataSource } from 'typeorm';
import { EventSourcing, EventSourcingConfigError } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

/** Events written where no EventSourcing can apply them are refused with what to do, never half-written. */

let dataSource: DataSource;

beforeAll(async () => {
  dataSource = await testDataSource('attach_required', subscriptionEntities);
});

afterAll(async () => {
  await dataSource?.destroy();
});

async function counts(): Promise<number[]> {
  const [{ events, aggregates }] = await dataSource.query(
    'SELECT (SELECT count(*)::int FROM subscription_events) AS events, (SELECT count(*)::int FROM subscription) AS aggregates',
  );
  return [events, aggregates];
}

test('saving an event before EventSourcing.attach is EventSourcingConfigError saying to attach; nothing is written', async () => {
  const error = await rejectionOf(dataSource.manager.save(SubscriptionCreated.build({ userId: 1 })));
  expect(error).toBeInstanceOf(EventSourcingConfigError);
  expect(error.message).toBe(
    'Subscription.Created was saved through a DataSource without EventSourcing: call EventSourcing.attach(dataSource) after dataSource.initialize(), before writing events',
  );
  expect(await counts()).toEqual([0, 0]);
});

test('after es.close() the same refusal applies; attaching again writes', async () => {
  const es = await EventSourcing.attach(dataSource);
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 2 }));
  await es.close();
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const error = await rejectionOf(dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'closed' })));
  expect(error).toBeInstanceOf(EventSourcingConfigError);
  expect(await counts()).toEqual([1, 1]);

  const again = await EventSourcing.attach(dataSource);
  try {
    expect((await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'attached' }))).version).toBe(2);
  } finally {
    await again.close();
  }
});

test('an event class missing from entities fails attach, naming it and its stored type', async () => {
  const partial = await testDataSource(
    'attach_required_partial',
    subscriptionEntities.filter((entity) => entity !== SubscriptionNoteAdded),
  );
  try {
    const error = await rejectionOf(EventSourcing.attach(partial));
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe(
      "SubscriptionNoteAdded ('Subscription.NoteAdded') extends SubscriptionEvent but is not in the DataSource's entities: list every event class there, or TypeORM can neither save nor load it",
    );
  } finally {
    await partial.destroy();
  }
});

test('two attaches started together on one DataSource (as a DI container resolves them): one succeeds, the other is refused', async () => {
  const results = await Promise.allSettled([EventSourcing.attach(dataSource), EventSourcing.attach(dataSource)]);
  const attachedOnes = results.filter((result): result is PromiseFulfilledResult<EventSourcing> => result.status === 'fulfilled').map((result) => result.value);
  const refusals = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected').map((result) => result.reason);
  try {
    expect(attachedOnes).toHaveLength(1);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toBeInstanceOf(EventSourcingConfigError);
    expect(refusals[0].message).toBe('EventSourcing is already attached to this DataSource: close() the other instance first');
  } finally {
    for (const es of attachedOnes) await es.close();
  }
  // Once closed, the DataSource takes a new attach.
  const again = await EventSourcing.attach(dataSource);
  await again.close();
});
