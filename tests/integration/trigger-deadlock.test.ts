import type { DataSource } from 'typeorm';
import {
  Attribute,
  Command,
  Dispatcher,
  EventSourcing,
  ReactorDeadlockError,
  type Reactor,
  type ReactorContext,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { columnsOf, eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Defect 13 of the hardening issue: a trigger reactor that saved an event of its own aggregate
 * through `dataSource.manager` instead of `ctx.manager` hung forever. Its write waits for the row
 * lock the event's transaction holds; that transaction waits for the reactor; PostgreSQL sees no
 * deadlock because the lock holder is idle in transaction. Such a write is now refused at once
 * with ReactorDeadlockError, and everything rolls back. Each test is bounded (before the fix it
 * never ended).
 */

const bound = 10_000;
let dataSource: DataSource;
let es: EventSourcing;

/**
 * Notes the activation: through ctx.manager for stripe keys starting with 'ctx', on another
 * subscription (id after 'other:') through dataSource.manager, else on the same one through
 * dataSource.manager, the mistake.
 */
class NoteActivation implements Reactor<SubscriptionActivated> {
  async call(event: SubscriptionActivated, ctx: ReactorContext) {
    const other = /^other:(\d+)$/.exec(event.stripeKey);
    const manager = event.stripeKey.startsWith('ctx') ? ctx.manager : dataSource.manager;
    const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: other ? Number(other[1]) : event.aggregateId });
    await manager.save(SubscriptionNoteAdded.build({ subscription, note: `activated with ${event.stripeKey}` }));
  }
}

class ActivateSubscriptionNow extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() stripeKey!: string;
  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey });
  }
}

beforeAll(async () => {
  dataSource = await testDataSource(`defects_trigger_deadlock_${process.pid}`, subscriptionEntities);
  es = await EventSourcing.attach(dataSource, { dispatcher: new Dispatcher().on(SubscriptionActivated, { trigger: NoteActivation }) });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

async function createSubscription(): Promise<Subscription> {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  return loadSubscription(dataSource, created.aggregateId);
}

function expectDeadlockError(error: any, subscription: Subscription): void {
  expect(error).toBeInstanceOf(ReactorDeadlockError);
  expect(error).toMatchObject({ code: 'REACTOR_DEADLOCK', reactor: 'NoteActivation', aggregateType: 'Subscription', aggregateId: subscription.id });
  expect(error.message).toBe(
    `trigger reactor NoteActivation wrote Subscription ${subscription.id} outside the event's transaction, which holds that row's lock, so the write would wait forever: write through ctx.manager`,
  );
}

/**
 * Runs a write that must be refused, then checks that nothing of it remains: rows, the caller's
 * instance, the event object; and that the row lock is free again (a correct write goes through).
 */
async function expectRefusedAndUndone(write: (subscription: Subscription, event: SubscriptionActivated) => Promise<unknown>): Promise<void> {
  const subscription = await createSubscription();
  const rowBefore = await subscriptionRow(dataSource, subscription.id);
  const columnsBefore = columnsOf(subscription);
  const event = SubscriptionActivated.build({ subscription, stripeKey: 'sub_wrong_manager' });

  expectDeadlockError(await rejectionOf(write(subscription, event)), subscription);

  expect((await eventRows(dataSource, subscription.id)).map((row) => row.type)).toEqual(['Subscription.Created']);
  expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
  expect(columnsOf(subscription)).toEqual(columnsBefore);
  expect([event.id, event.version, event.createdAt, event.position]).toEqual([undefined, undefined, undefined, undefined]);

  // The transaction rolled back and let go of the row: the same instance goes through ctx.manager.
  await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'ctx_after' }));
  expect((await eventRows(dataSource, subscription.id)).map((row) => [row.version, row.type])).toEqual([
    [1, 'Subscription.Created'],
    [2, 'Subscription.Activated'],
    [3, 'Subscription.NoteAdded'],
  ]);
  recordFigure('self-deadlocking trigger writes refused', 1);
}

test(
  'manager.save: the write through dataSource.manager is refused with ReactorDeadlockError and nothing is written',
  () => expectRefusedAndUndone((_subscription, event) => dataSource.manager.save(event)),
  bound,
);

test('es.append: the same refusal', () => expectRefusedAndUndone((_subscription, event) => es.append(event)), bound);

test(
  'inside a user transaction: the same refusal, and the whole transaction rolls back',
  () =>
    expectRefusedAndUndone((subscription, event) =>
      dataSource.transaction(async (manager) => {
        await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'before the activation' }));
        await manager.save(event);
      }),
    ),
  bound,
);

test('a command: the same refusal, not retried', async () => {
  let calls = 0;
  const original = NoteActivation.prototype.call;
  const counting = jest.spyOn(NoteActivation.prototype, 'call').mockImplementation(function (this: NoteActivation, ...args) {
    calls += 1;
    return original.apply(this, args);
  });
  try {
    await expectRefusedAndUndone((subscription) => ActivateSubscriptionNow.call({ subscription, stripeKey: 'sub_wrong_manager' }));
  } finally {
    counting.mockRestore();
  }
  // The refused call, then the correct write of the check: a deadlock is not a conflict to retry.
  expect(calls).toBe(2);
}, bound);

// Controls: what the check must let through (these pass without the fix as well).

test('through ctx.manager the same reactor writes both events in one transaction', async () => {
  const subscription = await createSubscription();
  const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'ctx_ok' }));
  const rows = await eventRows(dataSource, subscription.id);
  expect(rows.map((row) => [row.version, row.type, row.data.note ?? null])).toEqual([
    [1, 'Subscription.Created', null],
    [2, 'Subscription.Activated', null],
    [3, 'Subscription.NoteAdded', 'activated with ctx_ok'],
  ]);
  expect(rows[2].tx_id).toBe(rows[1].tx_id);
  expect(Number(rows[1].id)).toBe(activated.id);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'active', notes: ['activated with ctx_ok'], version: 3 });
}, bound);

test('writing another aggregate through dataSource.manager is not refused (its row is not locked)', async () => {
  const subscription = await createSubscription();
  const other = await createSubscription();
  await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: `other:${other.id}` }));
  expect((await eventRows(dataSource, subscription.id)).map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.Activated']);
  expect((await eventRows(dataSource, other.id)).map((row) => [row.type, row.data.note ?? null])).toEqual([
    ['Subscription.Created', null],
    ['Subscription.NoteAdded', `activated with other:${other.id}`],
  ]);
}, bound);
