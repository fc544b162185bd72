import type { DataSource, EntityManager } from 'typeorm';
import { EventSourcing, Projection } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { waitFor } from '../support/processes';
import { advisoryLocks, createHandledTable, handledRows, HANDLED_TABLE, horizonPassed, recordHandled, storedEvents } from '../support/projection-read-model';
import { ReplayLedger, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

/**
 * Runners following live writes: concurrent writers whose commits come out of position order,
 * one runner per projection (a second one stands by and takes over), wake-up by NOTIFY, and
 * stopping through a signal, es.close() or a lost connection.
 */

const WRITERS = 8;
const EVENTS_PER_WRITER = 25;
const TOTALS_TABLE = 'projection_totals';
const entities = [...subscriptionEntities, ...replayLedgerEntities];

let dataSource: DataSource;
let es: EventSourcing;
const errors: unknown[] = [];

beforeAll(async () => {
  dataSource = await testDataSource('projections_live', entities);
  es = await EventSourcing.attach(dataSource, { onError: (error) => errors.push(error) });
  await createHandledTable(dataSource);
  await dataSource.query(`CREATE TABLE ${TOTALS_TABLE} (aggregate text PRIMARY KEY, events int NOT NULL, amount int NOT NULL)`);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

beforeEach(async () => {
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}, ${TOTALS_TABLE}`);
  errors.length = 0;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function addToTotals(manager: EntityManager, aggregate: string, amount: number): Promise<void> {
  await manager.query(
    `INSERT INTO ${TOTALS_TABLE} (aggregate, events, amount) VALUES ($1, 1, $2) ON CONFLICT (aggregate) DO UPDATE SET events = ${TOTALS_TABLE}.events + 1, amount = ${TOTALS_TABLE}.amount + EXCLUDED.amount`,
    [aggregate, amount],
  );
}

async function lagOf(name: string): Promise<number | undefined> {
  return (await es.projections.status()).find((status) => status.name === name)?.lag?.events;
}

test(`${WRITERS} concurrent writers over 3 aggregates, one runner following live: the read model equals the fold of all events, each handled once`, async () => {
  const totals = new Projection('live-totals')
    .on([ReplayLedgerOpened, SubscriptionCreated], async (event, manager) => {
      await recordHandled(manager, event);
      await addToTotals(manager, `${manager.connection.getMetadata(event.constructor).tableName}:${event.aggregateId}`, 0);
    })
    .on(ReplayLedgerCredited, async (event, manager) => {
      await recordHandled(manager, event);
      await addToTotals(manager, `replay_ledger_events:${event.aggregateId}`, event.amount);
    })
    .on(SubscriptionNoteAdded, async (event, manager) => {
      await recordHandled(manager, event);
      await addToTotals(manager, `subscription_events:${event.aggregateId}`, event.note.length);
    });
  const ledgers = [await es.append(ReplayLedgerOpened.build({ owner: 'a' })), await es.append(ReplayLedgerOpened.build({ owner: 'b' }))].map((e) => e.aggregateId as number);
  const subscription = (await es.append(SubscriptionCreated.build({ userId: 1 }))).aggregateId as number;

  const stop = new AbortController();
  const running = es.projections.run(totals, { signal: stop.signal, pollInterval: 100, batchSize: 20 });
  const started = performance.now();
  // Each write holds its transaction open a little after writing, so commits come out of
  // position order across the three aggregates.
  const writer = async (w: number) => {
    for (let i = 0; i < EVENTS_PER_WRITER; i += 1) {
      const target = (w + i) % 3;
      await dataSource.transaction(async (manager) => {
        if (target < 2) {
          const replayLedger = await manager.findOneByOrFail(ReplayLedger, { id: ledgers[target] });
          await es.append(ReplayLedgerCredited.build({ replayLedger, amount: w * 100 + i, memo: `${w}.${i}` }), { manager });
        } else {
          const loaded = await manager.findOneByOrFail(Subscription, { id: subscription });
          await es.append(SubscriptionNoteAdded.build({ subscription: loaded, note: `w${w}-${i}` }), { manager });
        }
        await sleep((w * 7 + i * 3) % 4);
      });
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  await waitFor('the runner to reach the end', async () => (await lagOf('live-totals')) === 0, 20_000, 50);
  stop.abort();
  const { processed } = await running;
  recordFigure('projection writers', WRITERS);
  recordFigure('projection events written live', WRITERS * EVENTS_PER_WRITER);
  recordFigure('projection live follow', performance.now() - started, 'ms');

  const all = await storedEvents(dataSource, ['replay_ledger_events', 'subscription_events']);
  expect(all).toHaveLength(3 + WRITERS * EVENTS_PER_WRITER);
  // The fold, computed from the events tables directly.
  const fold: { aggregate: string; events: number; amount: number }[] = await dataSource.query(`
    SELECT 'replay_ledger_events:' || replay_ledger_id AS aggregate, count(*)::int AS events, coalesce(sum((data->>'amount')::int), 0)::int AS amount FROM replay_ledger_events GROUP BY replay_ledger_id
    UNION ALL
    SELECT 'subscription_events:' || subscription_id, count(*)::int, coalesce(sum(length(data->>'note')), 0)::int FROM subscription_events GROUP BY subscription_id
    ORDER BY 1`);
  expect(await dataSource.query(`SELECT aggregate, events, amount FROM ${TOTALS_TABLE} ORDER BY aggregate`)).toEqual(fold);
  const handled = await handledRows(dataSource);
  // Every event once (the primary key refuses a second), and in (tx_id, position) order.
  expect(handled.map(({ table, id }) => `${table}/${id}`)).toEqual(all.map(({ table, id }) => `${table}/${id}`));
  expect(processed).toBe(all.length);
  expect(errors).toEqual([]);
});

test('a second run of the same projection stands by while the first holds the lock, and takes over when the first is aborted', async () => {
  const projection = new Projection('takeover').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  await es.projections.catchUp(projection);
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  const first = new AbortController();
  const second = new AbortController();
  const firstRun = es.projections.run(projection, { signal: first.signal, pollInterval: 30 });
  await waitFor('the first runner to hold the lock', async () => (await advisoryLocks(dataSource)).length === 1, 20_000, 10);
  const secondRun = es.projections.run(projection, { signal: second.signal, pollInterval: 30 });
  await sleep(150); // long enough for the second to have tried the lock a few times

  for (let i = 0; i < 5; i += 1) await es.append(SubscriptionCreated.build({ userId: 100 + i }));
  await waitFor('the five events to be handled', async () => (await handledRows(dataSource)).length === 5, 20_000, 20);
  expect(await advisoryLocks(dataSource)).toHaveLength(1);

  first.abort();
  expect(await firstRun).toEqual({ processed: 5 });
  await waitFor('the second runner to take the lock', async () => (await advisoryLocks(dataSource)).length === 1, 20_000, 10);
  for (let i = 0; i < 4; i += 1) await es.append(SubscriptionCreated.build({ userId: 200 + i }));
  await waitFor('the four events to be handled', async () => (await handledRows(dataSource)).length === 9, 20_000, 20);
  second.abort();
  expect(await secondRun).toEqual({ processed: 4 });
  expect(await advisoryLocks(dataSource)).toHaveLength(0);
});

test('two processes (two DataSources here) running one projection: only the lock holder handles events; the other takes over when it stops', async () => {
  const other = await new (dataSource.constructor as typeof import('typeorm').DataSource)({ ...dataSource.options, synchronize: false } as never).initialize();
  const otherEs = await EventSourcing.attach(other);
  try {
    const projectionIn = (by: string) => new Projection('two-processes').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event, by));
    await es.projections.catchUp(projectionIn('catch-up'));
    await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
    const stopOne = new AbortController();
    const one = es.projections.run(projectionIn('one'), { signal: stopOne.signal, pollInterval: 30 });
    await waitFor('one to hold the lock', async () => (await advisoryLocks(dataSource)).length === 1, 20_000, 10);
    const two = otherEs.projections.run(projectionIn('two'), { pollInterval: 30 });
    for (let i = 0; i < 6; i += 1) await es.append(SubscriptionCreated.build({ userId: 300 + i }));
    await waitFor('six handled', async () => (await handledRows(dataSource)).length === 6, 20_000, 20);
    stopOne.abort();
    await one;
    for (let i = 0; i < 3; i += 1) await otherEs.append(SubscriptionCreated.build({ userId: 400 + i }));
    await waitFor('nine handled', async () => (await handledRows(dataSource)).length === 9, 20_000, 20);
    expect((await handledRows(dataSource)).map((row) => row.by)).toEqual([...Array(6).fill('one'), ...Array(3).fill('two')]);
    // es.close() stops the runner of that instance, and its lock goes with its connection.
    await otherEs.close();
    expect(await two).toEqual({ processed: 3 });
    expect(await advisoryLocks(dataSource)).toHaveLength(0);
  } finally {
    await otherEs.close();
    await other.destroy();
  }
});

/**
 * A runner of a fresh projection of SubscriptionCreated that has caught up, listens, and polls
 * only every 60 s: from then on only a notification, or its own re-check, wakes it.
 */
async function idleRunner(name: string): Promise<{ stop: AbortController; running: Promise<{ processed: number }> }> {
  const projection = new Projection(name).on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  await es.projections.catchUp(projection);
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  const stop = new AbortController();
  const running = es.projections.run(projection, { signal: stop.signal, pollInterval: 60_000 });
  await waitFor('the runner to listen', async () => (await dataSource.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`)).length > 0, 20_000, 10);
  await sleep(200); // its first batch done
  return { stop, running };
}

test('a commit wakes a runner through NOTIFY long before its poll interval', async () => {
  const { stop, running } = await idleRunner('woken');
  const written = performance.now();
  await es.append(SubscriptionCreated.build({ userId: 500 }));
  // Handled within 20 s while the runner polls every 60 s: a notification woke it.
  await waitFor('the event to be handled', async () => (await handledRows(dataSource)).length === 1, 20_000, 10);
  recordFigure('projection wake-up latency', performance.now() - written, 'ms');
  stop.abort();
  expect(await running).toEqual({ processed: 1 });
});

test('an event held back by an older open transaction is handled soon after that transaction ends, with no further commit and long before the poll interval', async () => {
  const { stop, running } = await idleRunner('held-back');
  // An unrelated transaction that has written (it has a transaction id) stays open...
  const older = dataSource.createQueryRunner();
  await older.connect();
  await older.startTransaction();
  await older.query('SELECT txid_current()');
  // ...while an event commits above it: the notification comes, the event cannot be read yet.
  await es.append(SubscriptionCreated.build({ userId: 550 }));
  await sleep(300);
  expect(await handledRows(dataSource)).toEqual([]);
  await older.commitTransaction();
  await older.release();
  // The horizon is cluster-wide: another test file's long transaction (instance-memory writes 100
  // events of a 2 MB aggregate in one) holds the event back too, until it ends.
  await horizonPassed(dataSource);
  const ended = performance.now();
  // Handled within 20 s while the runner polls every 60 s and nothing else commits: it looked again.
  await waitFor('the held-back event to be handled', async () => (await handledRows(dataSource)).length === 1, 20_000, 10);
  recordFigure('projection held-back pick-up', performance.now() - ended, 'ms');
  stop.abort();
  expect(await running).toEqual({ processed: 1 });
});

test('a runner whose lock connection is killed stops, acquires the lock again on a new connection, and goes on without skipping or repeating', async () => {
  const projection = new Projection('reconnect').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  await es.projections.catchUp(projection);
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  const stop = new AbortController();
  const running = es.projections.run(projection, { signal: stop.signal, pollInterval: 30, retryDelay: 20 });
  const [{ pid }] = await waitFor('the lock', async () => {
    const locks = await advisoryLocks(dataSource);
    return locks.length === 1 && locks;
  }, 20_000, 10);
  await es.append(SubscriptionCreated.build({ userId: 600 }));
  await waitFor('one handled', async () => (await handledRows(dataSource)).length === 1, 20_000, 10);
  await dataSource.query('SELECT pg_terminate_backend($1)', [pid]);
  await waitFor('the lock on another connection', async () => {
    const locks = await advisoryLocks(dataSource);
    return locks.length === 1 && locks[0].pid !== pid;
  }, 20_000, 10);
  await es.append(SubscriptionCreated.build({ userId: 601 }));
  await waitFor('two handled', async () => (await handledRows(dataSource)).length === 2, 20_000, 10);
  stop.abort();
  expect(await running).toEqual({ processed: 2 });
  expect((await handledRows(dataSource)).map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.Created']);
});

test('starting over as docs/projections.md says (delete the row, then empty the read model, in one transaction) while a runner runs: it handles every event again, once, on the empty table', async () => {
  const projection = new Projection('start-over').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  const stop = new AbortController();
  const running = es.projections.run(projection, { signal: stop.signal, pollInterval: 20 });
  const created = await storedEvents(dataSource, ['subscription_events'], ['Subscription.Created']);
  await waitFor('the first pass', async () => (await handledRows(dataSource)).length === created.length, 20_000, 10);
  // Batches keep running meanwhile (a write wakes the runner again and again).
  const writes = (async () => {
    for (let i = 0; i < 10; i += 1) await es.append(SubscriptionCreated.build({ userId: 800 + i }));
  })();
  await dataSource.transaction(async (manager) => {
    await manager.query(`DELETE FROM es_projections WHERE name = 'start-over'`);
    await manager.query(`TRUNCATE ${HANDLED_TABLE}`);
  });
  await writes;
  const all = await storedEvents(dataSource, ['subscription_events'], ['Subscription.Created']);
  await waitFor('the second pass', async () => (await handledRows(dataSource)).length === all.length, 20_000, 10);
  stop.abort();
  await running;
  expect((await handledRows(dataSource)).map((row) => row.id)).toEqual(all.map((row) => row.id));
  expect(errors).toEqual([]);
});

test('a run given an aborted signal resolves at once, having handled nothing and taken no lock', async () => {
  const projection = new Projection('aborted-before').on(SubscriptionCreated, (event, manager) => recordHandled(manager, event));
  await es.append(SubscriptionCreated.build({ userId: 700 }));
  const aborted = new AbortController();
  aborted.abort();
  expect(await es.projections.run(projection, { signal: aborted.signal })).toEqual({ processed: 0 });
  expect(await handledRows(dataSource)).toEqual([]);
  expect(await advisoryLocks(dataSource)).toHaveLength(0);
});
