import type { DataSource } from 'typeorm';
import { EventSourcing, Projection, type AggregateEvent } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { createHandledTable, deferred, handledRows, HANDLED_TABLE, horizonPassed, recordHandled, storedEvents } from '../support/projection-read-model';
import { ReplayLedger, ReplayLedgerClosed, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import { Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

/**
 * The order and safety of projections: events are read in (tx_id, position) order, and only
 * from transactions that have ended, so a transaction that took a lower position and commits
 * late is handled, not skipped, and every event exactly once.
 */

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('projections_order', [...subscriptionEntities, ...replayLedgerEntities]);
  es = await EventSourcing.attach(dataSource);
  await createHandledTable(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

beforeEach(async () => {
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
});

const key = (event: { txId: number; position: number; id: number }) => ({ txId: event.txId, position: event.position, id: event.id });

test('gap safety: an open transaction with a lower position holds back a later one until it commits, then both are handled once, in (tx_id, position) order', async () => {
  const projection = new Projection('gap-safety').on([SubscriptionCreated, SubscriptionNoteAdded], (event, manager) => recordHandled(manager, event));
  const subscription = (await es.append(SubscriptionCreated.build({ userId: 1 }))).aggregateId as number;
  await horizonPassed(dataSource);
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 1 });

  // A writes, and stays open; B writes a later position and commits.
  const aWrote = deferred<AggregateEvent[]>();
  const releaseA = deferred();
  const a = dataSource.transaction(async (manager) => {
    const first = await es.append(SubscriptionCreated.build({ userId: 2 }), { manager });
    aWrote.resolve([first]);
    await releaseA.promise;
    // A second event of A, written after B committed: the highest position of the three.
    const loaded = await manager.findOneByOrFail(Subscription, { id: subscription });
    const second = await es.append(SubscriptionNoteAdded.build({ subscription: loaded, note: 'late' }), { manager });
    return [first, second];
  });
  const [aFirst] = await aWrote.promise;
  const b = await es.append(SubscriptionCreated.build({ userId: 3 }));
  expect(aFirst.position).toBeLessThan(b.position);
  expect(aFirst.txId).toBeLessThan(b.txId);

  // B is committed and visible, but below it A is still open: nothing is read past A.
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 0 });
  expect(await handledRows(dataSource)).toHaveLength(1);
  const [status] = await es.projections.status();
  expect(status.lag).toEqual({ events: 1, seconds: expect.any(Number) });

  releaseA.resolve();
  const [, aSecond] = await a;
  expect(aSecond.position).toBeGreaterThan(b.position);

  await horizonPassed(dataSource);
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 3 });
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 0 });
  const handled = await handledRows(dataSource);
  // A's two events first (its tx_id is lower) although B's position lies between them.
  expect(handled.slice(1).map(key)).toEqual([key(aFirst), key(aSecond), key(b)]);
  expect(handled.map(key)).toEqual((await storedEvents(dataSource, ['subscription_events'])).map(key));
});

test('a transaction that rolls back leaves no gap behind: later events are read once it has ended', async () => {
  const projection = new Projection('rolled-back').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  await horizonPassed(dataSource);
  await es.projections.catchUp(projection);
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  const wrote = deferred();
  const release = deferred();
  const doomed = dataSource
    .transaction(async (manager) => {
      await es.append(SubscriptionCreated.build({ userId: 4 }), { manager });
      wrote.resolve();
      await release.promise;
      throw new Error('roll back');
    })
    .catch((error: Error) => error.message);
  await wrote.promise;
  const later = await es.append(SubscriptionCreated.build({ userId: 5 }));
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 0 });
  release.resolve();
  expect(await doomed).toBe('roll back');
  await horizonPassed(dataSource);
  expect(await es.projections.catchUp(projection)).toEqual({ processed: 1 });
  expect((await handledRows(dataSource)).map(key)).toEqual([key(later)]);
});

test('one projection over two aggregates reads both events tables in (tx_id, position) order, only the types it handles', async () => {
  const projection = new Projection('two-tables')
    .on(ReplayLedgerOpened, (event, manager) => recordHandled(manager, event))
    .on([ReplayLedgerCredited, SubscriptionCreated], (event, manager) => recordHandled(manager, event));
  const ledger = (await es.append(ReplayLedgerOpened.build({ owner: 'ada' }))).aggregateId as number;
  const subscription = (await es.append(SubscriptionCreated.build({ userId: 6 }))).aggregateId as number;
  for (let i = 0; i < 4; i += 1) {
    await es.append(ReplayLedgerCredited.build({ replayLedger: await dataSource.manager.findOneByOrFail(ReplayLedger, { id: ledger }), amount: i, memo: `m${i}` }));
    await es.append(SubscriptionCreated.build({ userId: 10 + i }));
  }
  // One transaction writing into both tables: one tx_id, the positions decide.
  await dataSource.transaction(async (manager) => {
    await es.append(SubscriptionCreated.build({ userId: 20 }), { manager });
    await es.append(ReplayLedgerCredited.build({ replayLedger: await manager.findOneByOrFail(ReplayLedger, { id: ledger }), amount: 9, memo: 'both' }), { manager });
    await es.append(SubscriptionCreated.build({ userId: 21 }), { manager });
  });
  // Types it does not handle, in both tables.
  await es.append(SubscriptionActivated.build({ subscription: await dataSource.manager.findOneByOrFail(Subscription, { id: subscription }), stripeKey: 'sk' }));
  await es.append(ReplayLedgerClosed.build({ replayLedger: await dataSource.manager.findOneByOrFail(ReplayLedger, { id: ledger }) }));

  await horizonPassed(dataSource);
  // Small batches, so that the keyset crosses tables and transactions at batch boundaries.
  const { processed } = await es.projections.catchUp(projection, { batchSize: 3 });
  const expected = await storedEvents(dataSource, ['subscription_events', 'replay_ledger_events'], [
    'ReplayLedger.Opened',
    'ReplayLedger.Credited',
    'Subscription.Created',
  ]);
  const handled = await handledRows(dataSource);
  expect(processed).toBe(expected.length);
  expect(handled.map(({ table, id, type }) => ({ table, id, type }))).toEqual(expected.map(({ table, id, type }) => ({ table, id, type })));
  expect(new Set(handled.map((row) => row.table))).toEqual(new Set(['subscription_events', 'replay_ledger_events']));
  const shared = handled.filter((row) => row.txId === handled.at(-1)!.txId);
  expect(shared.map((row) => row.type)).toEqual(['Subscription.Created', 'ReplayLedger.Credited', 'Subscription.Created']);
  expect(shared.map((row) => row.position)).toEqual([...shared.map((row) => row.position)].sort((x, y) => x - y));
});

test('handlers get real event instances with their data, and the batch transaction\'s manager', async () => {
  const seen: unknown[] = [];
  const projection = new Projection('instances').on(ReplayLedgerCredited, async (event, manager) => {
    seen.push([event instanceof ReplayLedgerCredited, event.amount, event.memo, typeof event.createdAt.getTime(), manager.queryRunner?.isTransactionActive]);
  });
  const ledger = await es.append(ReplayLedgerOpened.build({ owner: 'bo' }));
  const replayLedger = await dataSource.manager.findOneByOrFail(ReplayLedger, { id: ledger.aggregateId });
  await es.append(ReplayLedgerCredited.build({ replayLedger, amount: 42, memo: 'answer' }));
  await horizonPassed(dataSource);
  await es.projections.catchUp(projection);
  expect(seen.at(-1)).toEqual([true, 42, 'answer', 'number', true]);
});
