import type { DataSource } from 'typeorm';
import { EventAlreadyWrittenError, EventSourcing, EventSourcingConfigError, UsageError } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { columnsOf, loadSubscription } from '../support/write-path-lint';

// Refusals found by the bad-input table: each once wrote half of a save, or gave no named error.
let dataSource: DataSource;
let es: EventSourcing;
beforeAll(async () => {
  dataSource = await testDataSource('save_refusals', subscriptionEntities);
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});
async function fresh(): Promise<Subscription> {
  return loadSubscription(dataSource, (await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }))).aggregateId);
}
const rowOf = async (id: number) =>
  (await dataSource.query('SELECT version, notes, (SELECT count(*)::int FROM subscription_events WHERE subscription_id = $1) AS events FROM subscription WHERE id = $1', [id]))[0];

test('manager.save([event, event]): refused, and neither row nor instance changes', async () => {
  const subscription = await fresh();
  const before = columnsOf(subscription);
  const event = SubscriptionNoteAdded.build({ subscription, note: 'twice' });
  expect(await rejectionOf(dataSource.manager.save([event, event]))).toBeInstanceOf(EventAlreadyWrittenError);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await rowOf(subscription.id)).toEqual({ version: 1, notes: [], events: 1 });
  expect(columnsOf(subscription)).toEqual(before);
  expect(event.version).toBeUndefined();
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('manager.save(EventClass, [built, plainObject]): refused, and the built event changes no row', async () => {
  const subscription = await fresh();
  const good = SubscriptionNoteAdded.build({ subscription, note: 'good' });
  expect(await rejectionOf(dataSource.manager.save(SubscriptionNoteAdded, [good, { note: 'plain' }] as any))).toBeInstanceOf(EventSourcingConfigError);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(await rowOf(subscription.id)).toEqual({ version: 1, notes: [], events: 1 });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('verify({ id: undefined }) is a UsageError, not a verification of every row', async () => {
  expect(await rejectionOf(es.verify(Subscription, { id: undefined }))).toBeInstanceOf(UsageError);
});

test('es.withMetadata with an array is refused, not stored as {"0": ...}', async () => {
  const subscription = await fresh();
  let error: unknown;
  try {
    es.withMetadata(['x'] as any, () => dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'm' })));
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(UsageError);
  expect((error as Error).message).toBe('es.withMetadata: metadata must be a plain object');
  expect(await rowOf(subscription.id)).toEqual({ version: 1, notes: [], events: 1 });
});

test('null options and attributes are UsageErrors, not TypeErrors', async () => {
  const subscription = await fresh();
  expect(await rejectionOf(es.append(SubscriptionNoteAdded.build({ subscription, note: 'x' }), null as any))).toBeInstanceOf(UsageError);
  expect(await rejectionOf(es.verify(Subscription, null as any))).toBeInstanceOf(UsageError);
  expect(await rejectionOf((async () => SubscriptionNoteAdded.build({ subscription, note: 'x' }, null as any))())).toBeInstanceOf(UsageError);
});
