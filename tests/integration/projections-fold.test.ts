import type { DataSource } from 'typeorm';
import { EventSourcing, EventSourcingConfigError, UsageError, type AggregateEvent } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { deferred, storedEvents } from '../support/projection-read-model';
import { rejectionOf } from '../support/rejection';
import { ReplayLedger, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import { Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

/** es.fold: a one-off report over history, from one snapshot, in batches. */

let dataSource: DataSource;
let es: EventSourcing;
const subscriptions: number[] = [];
let ledger: number;

beforeAll(async () => {
  dataSource = await testDataSource('projections_fold', [...subscriptionEntities, ...replayLedgerEntities]);
  es = await EventSourcing.attach(dataSource);
  for (const userId of [1, 2, 3]) {
    const created = await es.append(SubscriptionCreated.build({ userId }));
    subscriptions.push(created.aggregateId as number);
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await es.append(SubscriptionActivated.build({ subscription, stripeKey: `sub_${userId}` }));
    for (let note = 0; note < userId * 2; note += 1) await es.append(SubscriptionNoteAdded.build({ subscription, note: `n${note}` }));
  }
  const opened = await es.append(ReplayLedgerOpened.build({ owner: 'ada' }));
  ledger = opened.aggregateId as number;
  const loaded = await dataSource.manager.findOneByOrFail(ReplayLedger, { id: ledger });
  for (const amount of [5, 7, 11]) await es.append(ReplayLedgerCredited.build({ replayLedger: loaded, amount, memo: 'm' }));
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

const ids = (events: AggregateEvent[]) => events.map((event) => event.id);
const collect = (list: AggregateEvent[], event: AggregateEvent) => [...list, event];

test('reads the selected classes across tables in the order projections see, in batches, with each event its class', async () => {
  const expected = await storedEvents(dataSource, ['subscription_events', 'replay_ledger_events'], ['Subscription.Activated', 'ReplayLedger.Credited']);
  const folded = await es.fold({ events: [SubscriptionActivated, ReplayLedgerCredited], batchSize: 2 }, collect, [] as AggregateEvent[]);
  expect(folded.map((event) => ({ type: event.type, id: event.id, position: event.position }))).toEqual(
    expected.map((row) => ({ type: row.type, id: row.id, position: row.position })),
  );
  expect(folded.filter((event) => event instanceof ReplayLedgerCredited).map((event) => (event as ReplayLedgerCredited).amount)).toEqual([5, 7, 11]);
  const total = await es.fold({ events: ReplayLedgerCredited }, (sum, event) => sum + event.amount, 0);
  expect(total).toBe(23);
});

test('one aggregate, in version order; an async reducer is awaited', async () => {
  const notes = await es.fold(
    { events: [SubscriptionNoteAdded, SubscriptionActivated], aggregate: { type: Subscription, id: subscriptions[2] }, batchSize: 3 },
    async (list: string[], event) => [...list, event instanceof SubscriptionNoteAdded ? event.note : `activated ${event.version}`],
    [],
  );
  expect(notes).toEqual(['activated 2', 'n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
});

test('time and position ranges bound the events read', async () => {
  const all = await es.fold({ events: SubscriptionNoteAdded }, collect, [] as AggregateEvent[]);
  expect(all).toHaveLength(12);
  const middle = all.slice(3, 9);
  const byPosition = await es.fold(
    { events: SubscriptionNoteAdded, fromPosition: middle[0].position, toPosition: middle[middle.length - 1].position },
    collect,
    [] as AggregateEvent[],
  );
  expect(ids(byPosition)).toEqual(ids(middle));
  const byTime = await es.fold({ events: SubscriptionNoteAdded, from: all[4].createdAt, to: new Date(all[4].createdAt.getTime() + 1) }, collect, [] as AggregateEvent[]);
  expect(byTime.every((event) => event.createdAt.getTime() === all[4].createdAt.getTime())).toBe(true);
  expect(ids(byTime)).toContain(all[4].id);
  expect(await es.fold({ events: SubscriptionNoteAdded, from: new Date(Date.now() + 60_000) }, collect, [] as AggregateEvent[])).toEqual([]);
});

test('the report is of one snapshot: events committed while it runs are not in it, and it holds no transaction id', async () => {
  const inReducer = deferred();
  const release = deferred();
  let calls = 0;
  const report = es.fold(
    { events: SubscriptionCreated, batchSize: 1 },
    async (count: number) => {
      calls += 1;
      if (calls === 1) {
        inReducer.resolve();
        await release.promise;
      }
      return count + 1;
    },
    0,
  );
  await inReducer.promise;
  await es.append(SubscriptionCreated.build({ userId: 99 }));
  // The fold's connection waits in its transaction, with no transaction id.
  const [{ open, xids }] = await dataSource.query(
    `SELECT count(*)::int AS open, count(*) FILTER (WHERE backend_xid IS NOT NULL)::int AS xids FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`,
  );
  expect({ open, xids }).toEqual({ open: 1, xids: 0 });
  release.resolve();
  expect(await report).toBe(3);
  expect(await es.fold({ events: SubscriptionCreated }, (count) => count + 1, 0)).toBe(4);
});

test('bad queries are refused with named errors', async () => {
  const cases: [Promise<unknown>, Function, string][] = [
    [es.fold({ events: [] }, collect, []), UsageError, 'es.fold: events must name at least one event class'],
    [es.fold({ events: SubscriptionCreated, batchSize: 0 }, collect, []), UsageError, 'es.fold: batchSize must be a positive integer, got 0'],
    [es.fold({ events: SubscriptionCreated, from: new Date('nope') }, collect, []), UsageError, 'es.fold: from must be a valid Date, got Invalid Date'],
    [es.fold({ events: SubscriptionCreated, toPosition: 1.5 }, collect, []), UsageError, 'es.fold: toPosition must be an integer, got 1.5'],
    [
      es.fold({ events: [SubscriptionCreated, ReplayLedgerCredited], aggregate: { type: Subscription, id: 1 } }, collect, []),
      UsageError,
      'es.fold: aggregate is a Subscription, but the query reads events of ReplayLedger too',
    ],
    [es.fold({ events: SubscriptionCreated, aggregate: { type: Subscription, id: null } }, collect, []), UsageError, 'es.fold: aggregate needs the id of the Subscription'],
    [es.fold({ events: SubscriptionCreated }, 'sum' as never, 0), UsageError, 'es.fold: reducer must be a function, got string'],
    [es.fold({ events: Date as never }, collect, []), EventSourcingConfigError, 'es.fold: Date is not an event class of this DataSource: list it in the DataSource\'s entities'],
  ];
  for (const [promise, errorClass, message] of cases) {
    const error = await rejectionOf(promise);
    expect(error).toBeInstanceOf(errorClass);
    expect((error as Error).message).toBe(message);
  }
});
