import type { DataSource } from 'typeorm';
import { EventAlreadyWrittenError, EventSourcing, ImmutableEventError } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Defect 10 of the hardening issue: one event instance saved twice at once (a retry racing the
 * first attempt, a double click handled twice) was written twice: two rows for one fact, the
 * aggregate applied twice, and the instance's fields left from whichever write finished last.
 * A second write of an instance is now refused while the first is in flight (and after it
 * committed); after a rollback the instance is free to be saved again.
 */

const bound = 10_000;
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource(`defects_double_save_${process.pid}`, subscriptionEntities);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

async function createSubscription(): Promise<Subscription> {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  return loadSubscription(dataSource, created.aggregateId);
}

const messages = {
  'in flight': 'Subscription.NoteAdded: this event instance is already being written; an event is written once, build a new one',
  written: 'Subscription.NoteAdded: this event instance is already written; an event is written once, build a new one',
};

/** Refused as a second write of the instance, in the given state(s). */
function expectAlreadyWritten(error: any, states: Array<'in flight' | 'written'> = ['in flight']): void {
  expect(error).toBeInstanceOf(EventAlreadyWrittenError);
  expect(error).toMatchObject({ code: 'EVENT_ALREADY_WRITTEN', eventType: 'Subscription.NoteAdded' });
  expect(states).toContain(error.state);
  expect(error.message).toBe(messages[error.state as 'in flight' | 'written']);
}

/** One row, one apply, and the instance and the event describe that row. */
async function expectWrittenOnce(subscription: Subscription, event: SubscriptionNoteAdded): Promise<void> {
  const rows = await eventRows(dataSource, subscription.id);
  expect(rows.map((row) => [row.version, row.type, row.data.note ?? null])).toEqual([
    [1, 'Subscription.Created', null],
    [2, 'Subscription.NoteAdded', event.note],
  ]);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2, notes: [event.note] });
  expect([event.id, event.version, event.aggregateId]).toEqual([Number(rows[1].id), 2, subscription.id]);
  expect(subscription).toMatchObject({ version: 2, notes: [event.note] });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
}

/**
 * Two writes started together: exactly one resolves, the other is refused. Both decide to INSERT
 * before either has written; the loser reaches its INSERT while the winner is in flight, or, if
 * its connection came later, after the winner committed.
 */
async function race(writes: Array<() => Promise<unknown>>): Promise<void> {
  const outcomes = await Promise.allSettled(writes.map((write) => write()));
  const rejected = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
  expect(rejected).toHaveLength(1);
  expectAlreadyWritten(rejected[0].reason, ['in flight', 'written']);
  recordFigure('concurrent second writes of one event refused', 1);
}

test.each([
  ['manager.save twice', (event: SubscriptionNoteAdded) => [() => dataSource.manager.save(event), () => dataSource.manager.save(event)]],
  ['es.append twice', (event: SubscriptionNoteAdded) => [() => es.append(event), () => es.append(event)]],
  ['manager.save and es.append', (event: SubscriptionNoteAdded) => [() => dataSource.manager.save(event), () => es.append(event)]],
])(
  '%s at once: one event row; the other write is refused',
  async (_how, writes) => {
    const subscription = await createSubscription();
    const event = SubscriptionNoteAdded.build({ subscription, note: 'once' });
    await race(writes(event));
    await expectWrittenOnce(subscription, event);
  },
  bound,
);

test('while the first write waits in an open transaction, a second one through another connection is refused at once', async () => {
  const subscription = await createSubscription();
  const event = SubscriptionNoteAdded.build({ subscription, note: 'held' });
  await dataSource.transaction(async (manager) => {
    await manager.save(event);
    // Before the fix this waited for the row lock the open transaction holds, then wrote again.
    expectAlreadyWritten(await rejectionOf(dataSource.manager.save(event)));
    // It has its row id by now, but its write is still in flight: es.append says so.
    expectAlreadyWritten(await rejectionOf(es.append(event)));
  });
  await expectWrittenOnce(subscription, event);
}, bound);

// A guard of what the fix must keep (it passes without the fix too): a written event stays written.
test('after the commit, a further append is ImmutableEventError and a save writes nothing new', async () => {
  const subscription = await createSubscription();
  const event = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'committed' }));

  const error = await rejectionOf(es.append(event));
  expect(error).toBeInstanceOf(ImmutableEventError);
  expect(error.message).toBe(`subscription_events row ${event.id}: events are append-only, update refused`);
  // TypeORM finds the row unchanged and sends nothing.
  await dataSource.manager.save(event);
  await expectWrittenOnce(subscription, event);
}, bound);

test('after a rollback, the same instance is saved again, once', async () => {
  const subscription = await createSubscription();
  const event = SubscriptionNoteAdded.build({ subscription, note: 'again' });
  await rejectionOf(
    dataSource.transaction(async (manager) => {
      await manager.save(event);
      throw new Error('roll back');
    }),
  );
  expect([event.id, event.version, event.position]).toEqual([undefined, undefined, undefined]);
  expect(subscription).toMatchObject({ version: 1, notes: [] });

  // The rolled-back write no longer holds the instance: a second race has one winner again.
  await race([() => dataSource.manager.save(event), () => es.append(event)]);
  await expectWrittenOnce(subscription, event);
}, bound);
