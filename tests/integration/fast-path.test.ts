import { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { AggregateNotFoundError, ConcurrencyError, Dispatcher, EventSourcing } from 'typeorm-event-sourcing';
import { ActivateSubscription, CancelSubscription } from '../support/command-models';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { expectLockedWrite, expectOneStatementWrite, isColumnDefaultsQuery, StatementLog, withListing, writeShape } from '../support/statement-log';
import {
  Subscription,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';
import { columnsOf, eventRows, loadSubscription, subscriptionRow, writtenFieldsOf } from '../support/write-path-lint';

/**
 * Issue 11's one-statement write path, as the DataSource's logger sees it: es.append and a
 * single-event command on an instance whose stored state the library knows (loaded by TypeORM,
 * or last written by the library) send one statement, outside any transaction; the results are
 * those of the locked path (stale instances, expected versions, local unsaved edits, rollbacks).
 */

const tables = { aggregate: 'subscription', events: 'subscription_events' };
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `es-fast-path-${process.pid}-${Date.now()}`;

const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;
const committed: SubscriptionNoteAdded[][] = [];

beforeAll(async () => {
  dataSource = await testDataSource('fast_path', subscriptionEntities, { logger: log, logging: true });
  // An async reactor on Cancelled only: the other event types have no reactor at all.
  const dispatcher = new Dispatcher().on(SubscriptionCancelled, { async: async () => undefined, name: 'FastPathMailer' });
  es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: redisUrl, name: queueName } });
  es.afterCommit((events) => void committed.push(events as SubscriptionNoteAdded[]));
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  const url = new URL(redisUrl);
  const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port || 6379) } });
  await queue.obliterate({ force: true }).finally(() => queue.close());
});

beforeEach(() => {
  committed.length = 0;
});

/** A subscription created by the library, loaded fresh by TypeORM. */
async function created(userId = 1): Promise<Subscription> {
  const event = await es.append(SubscriptionCreated.build({ userId }));
  committed.length = 0; // only what the test itself writes
  return loadSubscription(dataSource, event.aggregateId);
}

test('es.append on a loaded instance: one statement writes row and event, no transaction; the instance is then known too', async () => {
  const subscription = await created(11);

  const first = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'one' })));
  const statement = expectOneStatementWrite(first.statements, tables, { only: true });
  expect(statement.sql).toMatch(/\bversion\b/i);

  // The instance the write refreshed counts as known; so does an expected version that matches.
  const second = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'two' })));
  expectOneStatementWrite(second.statements, tables, { only: true });
  const third = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'three' }), { expectedVersion: 3 }));
  expectOneStatementWrite(third.statements, tables, { only: true });

  const events = [first.value, second.value, third.value];
  expect(events.map((event) => event.version)).toEqual([2, 3, 4]);
  for (const event of events) {
    expect([typeof event.id, typeof event.position, typeof event.txId, typeof event.aggregateId]).toEqual(['number', 'number', 'number', 'number']);
    expect(event.createdAt).toBeInstanceOf(Date);
  }
  expect(new Set(events.map((event) => event.txId)).size).toBe(3);
  expect(subscription).toMatchObject({ version: 4, notes: ['one', 'two', 'three'], userId: 11 });
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 4, notes: ['one', 'two', 'three'] });
  const rows = await eventRows(dataSource, subscription.id);
  expect(rows.map((row) => [row.version, row.id, row.position, row.tx_id])).toEqual([
    [1, expect.any(String), expect.any(String), expect.any(String)],
    ...events.map((event) => [event.version, String(event.id), String(event.position), String(event.txId)]),
  ]);
  expect(rows[3].created_at.getTime()).toBe(third.value.createdAt.getTime());
  // The update date is written by the statement and read back into the instance.
  expect(subscription.updatedAt.getTime()).toBe((await subscriptionRow(dataSource, subscription.id))!.updatedAt.getTime());
  // After-commit listeners: each write once, alone.
  expect(committed).toEqual([[first.value], [second.value], [third.value]]);
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test.each([
  ['find', (id: number) => dataSource.manager.find(Subscription, { where: { id } }).then((rows) => rows[0])],
  ['findOne', (id: number) => dataSource.getRepository(Subscription).findOne({ where: { id } })],
  ['findOneBy', (id: number) => dataSource.manager.findOneBy(Subscription, { id })],
  ['QueryBuilder getOne', (id: number) => dataSource.getRepository(Subscription).createQueryBuilder('s').where('s.id = :id', { id }).getOne()],
  ['QueryBuilder getMany', (id: number) => dataSource.manager.createQueryBuilder(Subscription, 's').where('s.id = :id', { id }).getMany().then((rows) => rows[0])],
  ['findOne with its events', (id: number) => dataSource.getRepository(Subscription).findOne({ where: { id }, relations: { events: true } })],
])('an instance loaded by %s takes the one-statement path', async (_loader, load) => {
  const { id } = await created(12);
  const subscription = (await load(id))!;

  const { value: event, statements } = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'loaded' })));

  expectOneStatementWrite(statements, tables, { only: true });
  expect(event.version).toBe(2);
  expect(subscription).toMatchObject({ version: 2, notes: ['loaded'] });
  expect(await es.verify(Subscription, { id })).toEqual([]);
});

test('a single-event command on a loaded instance is one statement', async () => {
  const subscription = await created(13);

  const { value: event, statements } = await log.during(() => ActivateSubscription.call({ subscription, stripeKey: 'sk_command' }));

  expectOneStatementWrite(statements, tables, { only: true });
  expect(event).toMatchObject({ version: 2, type: 'Subscription.Activated', aggregateId: subscription.id });
  expect(subscription).toMatchObject({ version: 2, status: 'active', stripeKey: 'sk_command' });
  expect(subscription.activatedAt?.getTime()).toBe(event!.createdAt.getTime());
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2, status: 'active', stripeKey: 'sk_command' });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('an event creating its aggregate, built without one, is one statement', async () => {
  await created(14); // column defaults and the rest of the set-up are known from here on

  const { value: event, statements } = await log.during(() => es.append(SubscriptionCreated.build({ userId: 15 })));

  // Column defaults given as SQL expressions (notes: '[]') are evaluated by a SELECT of their own.
  const statement = expectOneStatementWrite(statements.filter((s) => !isColumnDefaultsQuery(s.sql)), tables, { only: true });
  expect(statement.sql).toMatch(/INSERT\s+INTO\s+(\S+\.)?"?subscription"?[\s(]/i);
  expect(event).toMatchObject({ version: 1, type: 'Subscription.Created' });
  expect(typeof event.aggregateId).toBe('number');
  expect(await subscriptionRow(dataSource, event.aggregateId)).toMatchObject({ id: event.aggregateId, userId: 15, status: 'pending', notes: [], version: 1 });
  expect(await es.verify(Subscription, { id: event.aggregateId })).toEqual([]);
});

test('with an async reactor on a queue, the outbox row is written by the same statement, and handed over once', async () => {
  const subscription = await created(16);

  const { value: event, statements } = await log.during(() => CancelSubscription.call({ subscription, reason: 'moved' }));

  expectOneStatementWrite(statements, tables, { outbox: true, only: true });
  const handedOver = async () => {
    const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM es_outbox WHERE event_id = $1`, [event!.id]);
    return count === 0;
  };
  for (let i = 0; i < 200 && !(await handedOver()); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(await handedOver()).toBe(true);
  const jobs = (await es.queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((job) => job.data.position === event!.position);
  expect(jobs.map((job) => [job.name, job.data.table, job.data.id])).toEqual([['FastPathMailer', 'subscription_events', event!.id]]);
  expect(committed).toEqual([[event]]);
});

test('two loaded instances of one row both write without an expected version: both succeed, versions contiguous', async () => {
  const first = await created(17);
  const second = await loadSubscription(dataSource, first.id);

  await es.append(SubscriptionNoteAdded.build({ subscription: first, note: 'first' }));
  const { value: event, statements } = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription: second, note: 'second' })));

  // The stale instance's statement updated nothing; the locked path wrote on the current row.
  const shape = expectLockedWrite(statements, tables);
  withListing(shape, () => expect(shape.oneStatementWrites).toHaveLength(1));
  expect(event.version).toBe(3);
  expect(second).toMatchObject({ version: 3, notes: ['first', 'second'] });
  expect((await eventRows(dataSource, first.id)).map((row) => row.version)).toEqual([1, 2, 3]);
  expect(await subscriptionRow(dataSource, first.id)).toMatchObject({ version: 3, notes: ['first', 'second'] });
  expect(await es.verify(Subscription, { id: first.id })).toEqual([]);
});

test('a stale instance with its own version as expected version: ConcurrencyError naming both versions, nothing written', async () => {
  const first = await created(18);
  const stale = await loadSubscription(dataSource, first.id);
  await es.append(SubscriptionNoteAdded.build({ subscription: first, note: 'first' }));
  const before = columnsOf(stale);
  const event = SubscriptionNoteAdded.build({ subscription: stale, note: 'late' });
  const built = writtenFieldsOf(event);
  committed.length = 0;

  const error = await rejectionOf(es.append(event, { expectedVersion: stale.version }));

  expect(error).toBeInstanceOf(ConcurrencyError);
  expect(error).toMatchObject({ aggregateType: 'Subscription', aggregateId: first.id, expectedVersion: 1, actualVersion: 2, retryable: false });
  expect(error.message).toBe(`Subscription ${first.id}: expected version 1, but it is at version 2`);
  expect(columnsOf(stale)).toEqual(before);
  expect(writtenFieldsOf(event)).toEqual(built);
  expect((await eventRows(dataSource, first.id)).map((row) => row.version)).toEqual([1, 2]);
  expect(await subscriptionRow(dataSource, first.id)).toMatchObject({ version: 2, notes: ['first'] });
  expect(committed).toEqual([]);

  // An expected version ahead of the row, on an instance that is not stale, fails the same way.
  const ahead = await rejectionOf(es.append(SubscriptionNoteAdded.build({ subscription: first, note: 'ahead' }), { expectedVersion: 5 }));
  expect(ahead).toMatchObject({ expectedVersion: 5, actualVersion: 2 });
  expect(first).toMatchObject({ version: 2, notes: ['first'] });
});

test('a loaded instance whose row is gone: AggregateNotFoundError, nothing written', async () => {
  // A row at version 1 with no events (not adopted, so nothing references it): deletable.
  const [{ id }] = await dataSource.query(`INSERT INTO subscription ("userId", version) VALUES (19, 1) RETURNING id`);
  const subscription = await loadSubscription(dataSource, id);
  await dataSource.query(`DELETE FROM subscription WHERE id = $1`, [id]);
  const before = columnsOf(subscription);

  const error = await rejectionOf(es.append(SubscriptionNoteAdded.build({ subscription, note: 'ghost' })));

  expect(error).toBeInstanceOf(AggregateNotFoundError);
  expect(error.message).toBe(`Subscription ${id} does not exist`);
  expect(columnsOf(subscription)).toEqual(before);
  expect(await eventRows(dataSource, id)).toEqual([]);
});

test('local unsaved edits: apply runs on the stored state, the edits are never persisted and leave the instance', async () => {
  const subscription = await created(20);
  await es.append(SubscriptionNoteAdded.build({ subscription, note: 'stored' }));
  subscription.notes = [...subscription.notes, 'local only'];
  subscription.stripeKey = 'sk_local';
  subscription.status = 'locally active';
  subscription.viewCount = 99;

  const { statements } = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'event' })));

  expectOneStatementWrite(statements, tables, { only: true });
  const row = await subscriptionRow(dataSource, subscription.id);
  expect(row).toMatchObject({ version: 3, notes: ['stored', 'event'], stripeKey: null, status: 'pending', viewCount: 0 });
  expect(subscription).toMatchObject({ version: 3, notes: ['stored', 'event'], stripeKey: null, status: 'pending', viewCount: 0 });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test("a fast append inside the caller's transaction that rolls back: instance and event put back, no rows", async () => {
  const subscription = await created(21);
  const before = columnsOf(subscription);
  const event = SubscriptionNoteAdded.build({ subscription, note: 'undone' });
  const built = writtenFieldsOf(event);

  const error = await rejectionOf(
    dataSource.transaction(async (manager) => {
      const { statements } = await log.during(() => es.append(event, { manager }));
      // Inside a transaction too: one statement, no locked read.
      const shape = writeShape(statements, tables);
      withListing(shape, () => expect([shape.aggregateStatements.length, shape.oneStatementWrites.length, shape.lockedReads.length]).toEqual([1, 1, 0]));
      expect(subscription).toMatchObject({ version: 2, notes: ['undone'] });
      throw new Error('roll it back');
    }),
  );

  expect(error.message).toBe('roll it back');
  expect(columnsOf(subscription)).toEqual(before);
  expect(writtenFieldsOf(event)).toEqual(built);
  expect(event.id).toBeUndefined();
  expect(await eventRows(dataSource, subscription.id)).toHaveLength(1);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 1, notes: [] });
  expect(committed).toEqual([]);

  // The instance is as loaded again: the same event is written on it.
  await es.append(event);
  expect(event.version).toBe(2);
  expect(subscription).toMatchObject({ version: 2, notes: ['undone'] });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

describe('manager.save(event)', () => {
  test("on a loaded instance: TypeORM's transaction, one conditional UPDATE ... RETURNING instead of SELECT FOR UPDATE + UPDATE", async () => {
    const subscription = await created(24);

    const { value: event, statements } = await log.during(() => dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'saved' })));

    const shape = writeShape(statements, tables);
    withListing(shape, () => {
      expect([shape.transactions.length, shape.commits.length, shape.lockedReads.length, shape.eventInserts.length]).toEqual([1, 1, 0, 1]);
      expect(shape.aggregateStatements).toHaveLength(1);
      expect(shape.aggregateStatements[0].sql).toMatch(/^\s*UPDATE\b[^]*\bWHERE\b[^]*\bversion\b[^]*\bRETURNING\b/i);
    });
    expect(event.version).toBe(2);
    expect(subscription).toMatchObject({ version: 2, notes: ['saved'] });
    expect(committed).toEqual([[event]]);
    expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
  });

  test('on a stale instance: the UPDATE misses, the row lock is taken in the same transaction, and the event is applied to the row', async () => {
    const first = await created(25);
    const stale = await loadSubscription(dataSource, first.id);
    await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: first, note: 'first' }));

    const { value: event, statements } = await log.during(() => dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: stale, note: 'stale' })));

    const shape = expectLockedWrite(statements, tables);
    withListing(shape, () => expect(shape.transactions).toHaveLength(1));
    expect(event.version).toBe(3);
    expect(stale).toMatchObject({ version: 3, notes: ['first', 'stale'] });
    expect(await es.verify(Subscription, { id: first.id })).toEqual([]);
  });
});
