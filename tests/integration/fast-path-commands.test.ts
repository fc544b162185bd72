import type { DataSource } from 'typeorm';
import { Attribute, Command, Dispatcher, EventApplyError, EventSourcing, type AggregateEvent } from 'typeorm-event-sourcing';
import { AddNotes } from '../support/command-models';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { StatementLog, updates, inserts } from '../support/statement-log';
import { Subscription, SubscriptionCancelled, SubscriptionNoteAdded, SubscriptionRenamed, subscriptionEntities } from '../support/subscription-model';
import { appendedSubscription, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Commands returning several events: consecutive events of one aggregate are one statement in
 * the command's transaction, with the results of writing them one at a time.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;
const committed: AggregateEvent[][] = [];

/** Two notes on one subscription, then a rename of another: two runs. */
class NoteBothThenRename extends Command<AggregateEvent[]> {
  @Attribute() subscription!: Subscription;
  @Attribute() other!: Subscription;
  buildEvent() {
    return [
      SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'one' }),
      SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'two' }),
      SubscriptionRenamed.build({ subscription: this.other, stripeKey: 'renamed' }),
    ];
  }
}

/** A note, then a cancellation whose apply throws on an already cancelled subscription. */
class NoteThenCancel extends Command<AggregateEvent[]> {
  @Attribute() subscription!: Subscription;
  buildEvent() {
    return [
      SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'before cancel' }),
      SubscriptionCancelled.build({ subscription: this.subscription, reason: 'again' }),
    ];
  }
}

beforeAll(async () => {
  dataSource = await testDataSource('fast_path_commands', subscriptionEntities, { logger: log, logging: true });
  const dispatcher = new Dispatcher().on(SubscriptionNoteAdded, { async: async () => undefined, name: 'NoteMailer' });
  es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: redisUrl, name: `es-fast-commands-${process.pid}-${Date.now()}` } });
  es.afterCommit((events) => void committed.push(events));
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

function created(userId: number): Promise<Subscription> {
  return appendedSubscription(es, dataSource, userId);
}

const aggregateWrites = (sql: string) => updates(sql, 'subscription') || inserts(sql, 'subscription_events');

test('three events of one aggregate: one statement for all, versions and positions in order, one outbox row each, row equals replay', async () => {
  const subscription = await created(1);
  committed.length = 0;
  const { value: events, statements } = await log.during(() => AddNotes.call({ subscription, notes: ['a', 'b', 'c'] }));

  expect(statements.filter((statement) => aggregateWrites(statement.sql)).map((statement) => statement.sql.trim().slice(0, 8))).toEqual(['WITH "a"']);
  expect(events!.map((event) => event.version)).toEqual([2, 3, 4]);
  expect(events!.every((event, index) => index === 0 || event.position > events![index - 1].position)).toBe(true);
  expect(new Set(events!.map((event) => event.txId)).size).toBe(1);
  expect(events!.map((event) => typeof event.id)).toEqual(['number', 'number', 'number']);
  expect(subscription).toMatchObject({ version: 4, notes: ['a', 'b', 'c'] });
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 4, notes: ['a', 'b', 'c'] });
  expect(statements.find((statement) => aggregateWrites(statement.sql))!.sql).toMatch(/INSERT INTO (\S+\.)?"?es_outbox"?/);
  // No worker runs: once handed over, the three jobs wait in the queue, one per event.
  for (let tries = 0; tries < 50 && (await dataSource.query('SELECT 1 FROM es_outbox')).length > 0; tries += 1) await new Promise((resolve) => setTimeout(resolve, 100));
  const jobs = await es.queue.getJobs(['waiting']);
  expect(jobs.map((job) => job.data.id).sort((a, b) => a - b)).toEqual(events!.map((event) => event.id));
  expect(committed).toEqual([events]);
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('runs of two aggregates: a statement per run, in one transaction, every event committed once in order', async () => {
  const subscription = await created(2);
  const other = await created(3);
  committed.length = 0;
  const { value: events, statements } = await log.during(() => NoteBothThenRename.call({ subscription, other }));

  expect(statements.filter((statement) => aggregateWrites(statement.sql)).map((statement) => statement.sql.trim().slice(0, 8))).toEqual(['WITH "a"', 'WITH "a"']);
  expect(events!.map((event) => [event.aggregateId, event.version])).toEqual([[subscription.id, 2], [subscription.id, 3], [other.id, 2]]);
  expect(committed).toEqual([events]);
  expect(other.stripeKey).toBe('renamed');
  expect(await es.verify(Subscription)).toEqual([]);
});

test('a stale instance: the statement misses, the events are written one at a time on the current row', async () => {
  const subscription = await created(4);
  const stale = await loadSubscription(dataSource, subscription.id);
  await es.append(SubscriptionNoteAdded.build({ subscription, note: 'first' }));

  // The command expects the version it loaded; it reloads and decides again after the conflict.
  const events = await AddNotes.call({ subscription: stale, notes: ['x', 'y'] });
  expect(events!.map((event) => event.version)).toEqual([3, 4]);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 4, notes: ['first', 'x', 'y'] });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('a later apply throws: EventApplyError, nothing written, instance and events as they were', async () => {
  const subscription = await created(5);
  await es.append(SubscriptionCancelled.build({ subscription, reason: 'first' }));
  const before = { ...subscription };

  const error = await rejectionOf(NoteThenCancel.call({ subscription }));
  expect(error).toBeInstanceOf(EventApplyError);
  expect((error as EventApplyError).eventType).toBe('Subscription.Cancelled');
  expect({ ...subscription }).toEqual(before);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2 });
  const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription_events WHERE subscription_id = $1', [subscription.id]);
  expect(count).toBe(2);
});

test('inside a caller transaction that rolls back: instance and events put back, nothing written', async () => {
  const subscription = await created(6);
  const before = { ...subscription };
  let written: SubscriptionNoteAdded[] | null = null;
  const error = await rejectionOf(
    dataSource.transaction(async (manager) => {
      written = await AddNotes.call({ subscription, notes: ['p', 'q'] }, { manager });
      throw new Error('changed my mind');
    }),
  );
  expect((error as Error).message).toBe('changed my mind');
  expect({ ...subscription }).toEqual(before);
  expect(written!.map((event) => [event.id, event.version])).toEqual([
    [undefined, undefined],
    [undefined, undefined],
  ]);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 1, notes: [] });
});
