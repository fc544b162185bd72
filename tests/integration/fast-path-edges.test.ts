import { Client } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { ConcurrencyError, ConnectionLostError, EventSourcing } from 'typeorm-event-sourcing';
import { freshDatabase, testDataSource } from '../support/database';
import { FpMeter, FpMeterInstalled, FpMeterRead, fastPathEntities } from '../support/fast-path-models';
import { rejectionOf } from '../support/rejection';
import { slowEventInserts } from '../support/slow-event-insert';
import { expectOneStatementWrite, isColumnDefaultsQuery, StatementLog } from '../support/statement-log';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { columnsOf, eventRows, appendedSubscription, subscriptionRow, writtenFieldsOf } from '../support/write-path-lint';

/**
 * The one-statement path at its edges: values TypeORM converts (uuid keys, transformers,
 * simple-json, enums, bigint), columns changed by others without a version bump, one instance
 * written concurrently, scoped metadata, a lost connection and a lock timeout in the middle of
 * the statement, and a DataSource `schema`.
 */

const tables = { aggregate: 'subscription', events: 'subscription_events' };
const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('fast_path_edges', [...subscriptionEntities, ...fastPathEntities], {
    logger: log,
    logging: true,
    // A row lock held elsewhere fails a write after 300 ms instead of waiting.
    extra: { options: '-c lock_timeout=300' },
  });
  es = await EventSourcing.attach(dataSource);
  // A write that takes its time, so that a test can break its connection while it runs.
  await slowEventInserts(dataSource, 'edges_slow');
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

function created(userId: number): Promise<Subscription> {
  return appendedSubscription(es, dataSource, userId);
}

test('a uuid key, a numeric with a transformer, simple-json, an enum and a bigint: read back through TypeORM', async () => {
  await es.append(FpMeterInstalled.build({ factor: 1 })); // column defaults are read once, then known
  const installed = await log.during(() => es.append(FpMeterInstalled.build({ factor: 1.25 })));
  expectOneStatementWrite(installed.statements, { aggregate: 'fp_meter', events: 'fp_meter_events' }, { only: true });
  expect(installed.value.aggregateId).toMatch(/^[0-9a-f-]{36}$/);
  const meter = await dataSource.manager.findOneByOrFail(FpMeter, { id: installed.value.aggregateId });

  const first = await log.during(() => es.append(FpMeterRead.build({ fpMeter: meter, value: 1.5 })));
  expectOneStatementWrite(first.statements, { aggregate: 'fp_meter', events: 'fp_meter_events' }, { only: true });
  const second = await log.during(() => es.append(FpMeterRead.build({ fpMeter: meter, value: 2.25 })));
  expectOneStatementWrite(second.statements, { aggregate: 'fp_meter', events: 'fp_meter_events' }, { only: true });

  expect(meter).toMatchObject({ id: installed.value.aggregateId, reading: 3.75, calibration: { factor: 1.25 }, state: 'on', pulses: '2', version: 3 });
  expect(typeof meter.reading).toBe('number');
  expect(meter.readAt?.getTime()).toBe(second.value.createdAt.getTime());
  expect(await dataSource.manager.findOneByOrFail(FpMeter, { id: meter.id })).toEqual(meter);
  expect(await es.verify(FpMeter, { id: meter.id })).toEqual([]);
});

test('columns another writer changed without a version bump (excluded ones) are read back into the instance', async () => {
  const subscription = await created(51);
  await dataSource.getRepository(Subscription).update(subscription.id, { viewCount: 5 });

  await es.append(SubscriptionNoteAdded.build({ subscription, note: 'seen' }));

  expect(subscription).toMatchObject({ viewCount: 5, notes: ['seen'], version: 2 });
  expect(subscription.updatedAt.getTime()).toBe((await subscriptionRow(dataSource, subscription.id))!.updatedAt.getTime());
});

test('one instance written by five concurrent appends: versions contiguous, row equals replay, the instance a stored state', async () => {
  const subscription = await created(52);

  const events = await Promise.all(Array.from({ length: 5 }, (_, index) => es.append(SubscriptionNoteAdded.build({ subscription, note: `c${index}` }))));

  expect(events.map((event) => event.version).sort()).toEqual([2, 3, 4, 5, 6]);
  const rows = await eventRows(dataSource, subscription.id);
  expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 6, notes: rows.slice(1).map((row) => row.data.note) });
  // Whichever write resolved last, the instance holds a state the row had.
  expect(subscription.notes).toEqual(rows.slice(1, subscription.version).map((row) => row.data.note));
  await es.append(SubscriptionNoteAdded.build({ subscription, note: 'after' }));
  expect(subscription).toMatchObject({ version: 7, notes: [...rows.slice(1).map((row) => row.data.note), 'after'] });
  expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
});

test('es.withMetadata reaches the one statement', async () => {
  const subscription = await created(53);
  const event = await es.withMetadata({ requestId: 'req-1' }, () => es.append(SubscriptionNoteAdded.build({ subscription, note: 'traced' })));
  expect(event.metadata).toMatchObject({ requestId: 'req-1' });
  expect((await eventRows(dataSource, subscription.id))[1].metadata).toEqual(event.metadata);
});

test('a lock timeout (55P03) during the statement: a retryable ConcurrencyError, nothing written', async () => {
  const subscription = await created(55);
  const before = columnsOf(subscription);
  const locker = new Client({ connectionString: (dataSource.options as { url: string }).url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM subscription WHERE id = $1 FOR UPDATE', [subscription.id]);

    const error = await rejectionOf(es.append(SubscriptionNoteAdded.build({ subscription, note: 'blocked' })));

    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ aggregateType: 'Subscription', aggregateId: subscription.id, retryable: true });
    expect(columnsOf(subscription)).toEqual(before);
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
  }
  expect(await eventRows(dataSource, subscription.id)).toHaveLength(1);
  await es.append(SubscriptionNoteAdded.build({ subscription, note: 'unblocked' }));
  expect(subscription).toMatchObject({ version: 2, notes: ['unblocked'] });
});

// Last of this DataSource's tests: the connection it breaks may stay in the pool.
test('the connection lost in the middle of the statement: ConnectionLostError (in doubt: autocommit), instance and event put back', async () => {
  const subscription = await created(54);
  const before = columnsOf(subscription);
  const event = SubscriptionNoteAdded.build({ subscription, note: 'slow' });
  const built = writtenFieldsOf(event);

  const write = rejectionOf(es.append(event));
  const killer = new Client({ connectionString: (dataSource.options as { url: string }).url });
  await killer.connect();
  try {
    let killed = 0;
    for (let i = 0; i < 100 && killed === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const rows = await killer.query(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%subscription_events%'`,
      );
      killed = rows.rowCount ?? 0;
    }
    expect(killed).toBe(1);
  } finally {
    await killer.end();
  }
  const error = await write;

  expect(error).toBeInstanceOf(ConnectionLostError);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', retryable: true, aggregateType: 'Subscription', aggregateId: subscription.id, inDoubt: true });
  expect(columnsOf(subscription)).toEqual(before);
  expect(writtenFieldsOf(event)).toEqual(built);
  // Looked at through a connection of its own: the pool may still hold the broken one.
  const checker = new Client({ connectionString: (dataSource.options as { url: string }).url });
  await checker.connect();
  try {
    const { rows } = await checker.query(`SELECT version FROM subscription_events WHERE subscription_id = $1 ORDER BY version`, [subscription.id]);
    expect(rows).toEqual([{ version: 1 }]);
    expect((await checker.query(`SELECT version, notes FROM subscription WHERE id = $1`, [subscription.id])).rows).toEqual([{ version: 1, notes: [] }]);
  } finally {
    await checker.end();
  }
});

describe("a DataSource with schema: 'fp_elsewhere'", () => {
  const schemaLog = new StatementLog();
  let other: DataSource;
  let otherEs: EventSourcing;

  beforeAll(async () => {
    const url = await freshDatabase('fast_path_schema');
    other = new DataSource({ type: 'postgres', url, entities: subscriptionEntities, schema: 'fp_elsewhere', logger: schemaLog, logging: true } as DataSourceOptions);
    await other.initialize();
    await other.query(`CREATE SCHEMA fp_elsewhere`);
    await other.synchronize();
    otherEs = await EventSourcing.attach(other, { createSchema: true });
  });

  afterAll(async () => {
    await otherEs?.close();
    await other?.destroy();
  });

  test('the one statement names the schema: creating and later events', async () => {
    const creating = await schemaLog.during(() => otherEs.append(SubscriptionCreated.build({ userId: 56 })));
    // Column defaults given as SQL expressions (notes: '[]') are evaluated by a SELECT of their own.
    expectOneStatementWrite(creating.statements.filter((s) => !isColumnDefaultsQuery(s.sql)), tables, { only: true });
    const subscription = await other.manager.findOneByOrFail(Subscription, { id: creating.value.aggregateId });
    const noted = await schemaLog.during(() => otherEs.append(SubscriptionNoteAdded.build({ subscription, note: 'elsewhere' })));
    expectOneStatementWrite(noted.statements, tables, { only: true });

    const [row] = await other.query(`SELECT version, notes FROM fp_elsewhere.subscription WHERE id = $1`, [subscription.id]);
    expect(row).toEqual({ version: 2, notes: ['elsewhere'] });
    const [{ count }] = await other.query(`SELECT count(*)::int AS count FROM fp_elsewhere.subscription_events WHERE subscription_id = $1`, [subscription.id]);
    expect(count).toBe(2);
    expect(await otherEs.verify(Subscription)).toEqual([]);
  });
});
