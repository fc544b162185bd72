import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { ConcurrencyError, ConnectionLostError, Dispatcher, EventSourcing, type ReactorContext } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { slowEventInserts } from '../support/slow-event-insert';
import {
  FpAccount,
  FpAccountEmailChanged,
  FpAccountOpened,
  FpDoc,
  FpDocDrafted,
  FpDocRetitled,
  FpTicket,
  FpTicketClosed,
  FpTicketOpened,
  fastPathEntities,
} from '../support/fast-path-models';
import { rejectionOf } from '../support/rejection';
import { expectLockedWrite, expectOneStatementWrite, StatementLog } from '../support/statement-log';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { appendedSubscription, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Where the first version of the fast path broke its contract or gave other results than the
 * locked path: each test failed on it.
 */

const tables = { aggregate: 'subscription', events: 'subscription_events' };
const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('fast_path_bugs', [...subscriptionEntities, ...fastPathEntities], { logger: log, logging: true, poolSize: 3 });
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(FpTicketClosed, {
      trigger: async (event: FpTicketClosed, ctx: ReactorContext) => void (await ctx.manager.query(`SELECT $1::int`, [event.aggregateId])),
      name: 'NoteClosing',
    }),
  });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

function created(userId: number): Promise<Subscription> {
  return appendedSubscription(es, dataSource, userId);
}

test('an instance loaded inside a transaction that rolled back is not trusted: the next write applies to the committed row', async () => {
  const subscription = await created(1);
  let seenInside!: Subscription;
  await rejectionOf(
    dataSource.transaction(async (manager) => {
      await es.append(SubscriptionNoteAdded.build({ subscription, note: 'rolled back' }), { manager });
      seenInside = await manager.findOneByOrFail(Subscription, { id: subscription.id });
      throw new Error('roll it back');
    }),
  );
  await es.append(SubscriptionNoteAdded.build({ subscription: await loadSubscription(dataSource, subscription.id), note: 'committed' }));

  await es.append(SubscriptionNoteAdded.build({ subscription: seenInside, note: 'next' }));

  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 3, notes: ['committed', 'next'] });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('an event creating its aggregate is one statement also when a column default is a constant SQL expression', async () => {
  await created(4);
  const { statements } = await log.during(() => es.append(SubscriptionCreated.build({ userId: 5 })));
  expectOneStatementWrite(statements, tables, { only: true });
});

test('after ALTER COLUMN ... TYPE, an event with a trigger reactor (its own transaction) is written: the stale statement is prepared again', async () => {
  const open = async () => {
    const opened = await Promise.all([0, 1, 2].map(() => es.append(FpTicketOpened.build({ title: 'open' }))));
    return Promise.all(opened.map((event) => dataSource.manager.findOneByOrFail(FpTicket, { id: event.aggregateId })));
  };
  // Three at once, so that each connection of the pool prepares the statement.
  const prepared = await open();
  await Promise.all(prepared.map((ticket) => es.append(FpTicketClosed.build({ fpTicket: ticket, reason: 'prepare' }))));
  const later = await open();
  await dataSource.query(`ALTER TABLE fp_ticket ALTER COLUMN status TYPE text`);

  const outcomes = await Promise.allSettled(later.map((ticket) => es.append(FpTicketClosed.build({ fpTicket: ticket, reason: 'after' }))));

  expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'ok' : (outcome.reason as Error).message))).toEqual(['ok', 'ok', 'ok']);
});

test("after ALTER COLUMN ... TYPE, es.append inside the caller's transaction: a retryable ConcurrencyError, and the transaction run again writes", async () => {
  const subscription = await created(6);
  await dataSource.transaction((manager) => es.append(SubscriptionNoteAdded.build({ subscription, note: 'prepare' }), { manager }));
  await dataSource.query(`ALTER TABLE subscription ALTER COLUMN "stripeKey" TYPE text`);
  const write = () => dataSource.transaction((manager) => es.append(SubscriptionNoteAdded.build({ subscription, note: 'after' }), { manager }));

  // The connection that prepared the statement may not be the one the transaction gets: at most one failure.
  const first = await write().then(() => undefined, (error: unknown) => error);
  if (first !== undefined) {
    expect(first).toBeInstanceOf(ConcurrencyError);
    expect(first).toMatchObject({ retryable: true, aggregateId: subscription.id });
    expect((first as Error).message).toContain('cached plan must not change result type: a migration changed the table under a prepared statement');
    expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2 });
    await write();
  }
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 3, notes: ['prepare', 'after'] });
});

test('a select: false column (a password hash) is not set on the instance by the one statement', async () => {
  const { aggregateId } = await es.append(FpAccountOpened.build({ email: 'a@example.com' }));
  const account = await dataSource.manager.findOneByOrFail(FpAccount, { id: aggregateId });
  expect(account.passwordHash).toBeUndefined();

  await es.append(FpAccountEmailChanged.build({ fpAccount: account, email: 'b@example.com' }));

  expect(account.email).toBe('b@example.com');
  expect(account.passwordHash).toBeUndefined();
  expect(JSON.stringify(account)).not.toContain('secret-hash');
});

test('a soft-deleted aggregate does not exist for the one statement either: AggregateNotFoundError', async () => {
  const { aggregateId } = await es.append(FpDocDrafted.build({ title: 'draft' }));
  const doc = await dataSource.manager.findOneByOrFail(FpDoc, { id: aggregateId });
  const ghost = await dataSource.manager.findOneByOrFail(FpDoc, { id: aggregateId });
  await dataSource.getRepository(FpDoc).softRemove(ghost);

  const error = await rejectionOf(es.append(FpDocRetitled.build({ fpDoc: doc, title: 'after deletion' })));

  expect(error?.constructor?.name).toBe('AggregateNotFoundError');
  expect((await dataSource.query(`SELECT title, version FROM fp_doc WHERE id = $1`, [aggregateId]))[0]).toEqual({ title: 'draft', version: 1 });
});

describe('a pool of one connection', () => {
  let single: DataSource;
  let singleEs: EventSourcing;

  beforeAll(async () => {
    single = await testDataSource('fast_path_bugs_single', subscriptionEntities, { poolSize: 1 });
    singleEs = await EventSourcing.attach(single);
    await slowEventInserts(single, 'bugs_slow');
  });

  afterAll(async () => {
    await singleEs?.close();
    await single?.destroy();
  });

  test('a connection lost during the one statement is not given back to the pool: the next query works', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 8; round += 1) {
      const subscription = await appendedSubscription(singleEs, single, 3);
      const write = rejectionOf(singleEs.append(SubscriptionNoteAdded.build({ subscription, note: 'slow' })));
      const killer = new Client({ connectionString: (single.options as { url: string }).url });
      await killer.connect();
      let killed = 0;
      for (let i = 0; i < 100 && killed === 0; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        killed = (
          await killer.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%subscription_events%'`,
          )
        ).rowCount ?? 0;
      }
      await killer.end();
      const error = await write;
      expect(error).toBeInstanceOf(ConnectionLostError);
      expect(error).toMatchObject({ inDoubt: true });
      // With fastPath: false the same loop never meets a dead connection.
      outcomes.push(await single.query('SELECT 1').then(() => 'ok', (e: Error) => e.message));
    }
    expect(outcomes).toEqual(Array(8).fill('ok'));
  }, 60_000);
});

describe('EventSourcing.attach(dataSource, { fastPath: false })', () => {
  const offLog = new StatementLog();
  let off: DataSource;
  let offEs: EventSourcing;

  beforeAll(async () => {
    off = await testDataSource('fast_path_bugs_off', subscriptionEntities, { logger: offLog, logging: true });
    offEs = await EventSourcing.attach(off, { fastPath: false });
  });

  afterAll(async () => {
    await offEs?.close();
    await off?.destroy();
  });

  test('es.append of a loaded instance takes the locked path (SELECT ... FOR UPDATE), not a conditional UPDATE', async () => {
    const subscription = await appendedSubscription(offEs, off, 9);
    const { statements } = await offLog.during(() => offEs.append(SubscriptionNoteAdded.build({ subscription, note: 'locked?' })));
    expectLockedWrite(statements, tables);
  });
});

describe('one DataSource, EventSourcing closed and attached again', () => {
  let again: DataSource;

  beforeAll(async () => {
    again = await testDataSource('fast_path_bugs_reattach', subscriptionEntities, { poolSize: 1 });
  });

  afterAll(async () => {
    await again?.destroy();
  });

  test('a new instance never reuses a statement name a pooled connection prepared for another text', async () => {
    const first = await EventSourcing.attach(again);
    const { aggregateId } = await first.append(SubscriptionCreated.build({ userId: 10 })); // the insert statement: typeorm_es_1
    await first.close();

    const second = await EventSourcing.attach(again);
    try {
      const subscription = await loadSubscription(again, aggregateId);
      // Its first statement is an update: a different text, under the same first name.
      const event = await second.append(SubscriptionNoteAdded.build({ subscription, note: 'after re-attach' }));
      expect(event.version).toBe(2);
    } finally {
      await second.close();
    }
  });
});
