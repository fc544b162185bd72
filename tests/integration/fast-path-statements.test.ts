import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { ActivateSubscription } from '../support/command-models';
import { testDataSource } from '../support/database';
import { expectLockedWrite, expectOneStatementWrite, inserts, StatementLog, withListing, writeShape } from '../support/statement-log';
import { Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { appendedSubscription, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * How the one statement is sent: as a named prepared statement by default, unnamed with
 * `statements: 'unnamed'` (for poolers that do not keep sessions), and re-prepared when a
 * migration changed the table under a prepared statement. One connection per DataSource, so that
 * the session the tests look into is the one that wrote.
 */

const tables = { aggregate: 'subscription', events: 'subscription_events' };

interface Attached {
  log: StatementLog;
  dataSource: DataSource;
  es: EventSourcing;
}

async function attach(name: string, statements?: 'named' | 'unnamed'): Promise<Attached> {
  const log = new StatementLog();
  const dataSource = await testDataSource(name, subscriptionEntities, { logger: log, logging: true, poolSize: 1 });
  const es = await EventSourcing.attach(dataSource, statements ? { statements } : {});
  return { log, dataSource, es };
}

/** The statements prepared in the DataSource's only session that insert events. */
async function preparedEventInserts(dataSource: DataSource): Promise<string[]> {
  const rows: { name: string; statement: string }[] = await dataSource.query(`SELECT name, statement FROM pg_prepared_statements`);
  return rows.filter((row) => inserts(row.statement, tables.events)).map((row) => row.name);
}

function created({ es, dataSource }: Attached, userId: number): Promise<Subscription> {
  return appendedSubscription(es, dataSource, userId);
}

let named: Attached;
let unnamed: Attached;

beforeAll(async () => {
  named = await attach('fast_path_named');
  unnamed = await attach('fast_path_unnamed', 'unnamed');
});

afterAll(async () => {
  for (const attached of [named, unnamed]) {
    await attached?.es.close();
    await attached?.dataSource.destroy();
  }
});

test('by default the statement is a named prepared statement of the session', async () => {
  const subscription = await created(named, 41);
  const { statements } = await named.log.during(() => named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'named' })));
  expectOneStatementWrite(statements, tables, { only: true });

  const names = await preparedEventInserts(named.dataSource);
  expect(names.length).toBeGreaterThanOrEqual(1);
  expect(names.every((name) => name.length > 0)).toBe(true);
});

test("statements: 'unnamed': one statement, nothing prepared in the session, and every path still works", async () => {
  const subscription = await created(unnamed, 42);
  const stale = await loadSubscription(unnamed.dataSource, subscription.id);

  const appended = await unnamed.log.during(() => unnamed.es.append(SubscriptionNoteAdded.build({ subscription, note: 'unnamed' })));
  expectOneStatementWrite(appended.statements, tables, { only: true });
  const commanded = await unnamed.log.during(() => ActivateSubscription.call({ subscription, stripeKey: 'sk_unnamed' }, { manager: unnamed.dataSource.manager }));
  expectOneStatementWrite(commanded.statements, tables, { only: true });
  const fellBack = await unnamed.log.during(() => unnamed.es.append(SubscriptionNoteAdded.build({ subscription: stale, note: 'stale' })));
  expectLockedWrite(fellBack.statements, tables);

  expect(await preparedEventInserts(unnamed.dataSource)).toEqual([]);
  expect(stale).toMatchObject({ version: 4, notes: ['unnamed', 'stale'], status: 'active', stripeKey: 'sk_unnamed' });
  expect(await subscriptionRow(unnamed.dataSource, subscription.id)).toMatchObject({ version: 4, notes: ['unnamed', 'stale'], status: 'active' });
  expect(await unnamed.es.verify(Subscription)).toEqual([]);
});

test('ADD COLUMN on the aggregate table between two writes of one process: the next writes work', async () => {
  const subscription = await created(named, 43);
  await named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'before' }));

  await named.dataSource.query(`ALTER TABLE subscription ADD COLUMN "migratedFlag" text`);

  const { statements } = await named.log.during(() => named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'after' })));
  expectOneStatementWrite(statements, tables);
  const reloaded = await loadSubscription(named.dataSource, subscription.id);
  await named.es.append(SubscriptionNoteAdded.build({ subscription: reloaded, note: 'reloaded' }));
  const fresh = await named.es.append(SubscriptionCreated.build({ userId: 44 }));

  expect(subscription).toMatchObject({ version: 3, notes: ['before', 'after'] });
  expect(reloaded).toMatchObject({ version: 4, notes: ['before', 'after', 'reloaded'] });
  expect(await subscriptionRow(named.dataSource, subscription.id)).toMatchObject({ version: 4, notes: ['before', 'after', 'reloaded'], migratedFlag: null });
  expect(await subscriptionRow(named.dataSource, fresh.aggregateId)).toMatchObject({ version: 1, userId: 44, migratedFlag: null });
  expect(await named.es.verify(Subscription)).toEqual([]);
});

test('ALTER COLUMN ... TYPE text on a sourced varchar column between two writes: the statement is prepared again, the writes work', async () => {
  const subscription = await created(named, 45);
  await named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'before' }));
  const errorsBefore = named.log.errors.length;

  await named.dataSource.query(`ALTER TABLE subscription ALTER COLUMN status TYPE text`);

  // The statement prepared before the migration is refused once (0A000), then sent again, prepared afresh.
  const noted = await named.log.during(() => named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'after' })));
  const shape = writeShape(noted.statements, tables);
  withListing(shape, () => {
    expect(shape.transactions).toEqual([]);
    expect(shape.oneStatementWrites.length).toBeLessThanOrEqual(2);
    expect(new Set(shape.oneStatementWrites.map((s) => s.sql)).size).toBe(1);
  });
  const activated = await named.es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sk_migrated' }));
  const again = await named.log.during(() => named.es.append(SubscriptionNoteAdded.build({ subscription, note: 'again' })));
  expectOneStatementWrite(again.statements, tables, { only: true });
  const fresh = await named.es.append(SubscriptionCreated.build({ userId: 46 }));

  expect(activated.version).toBe(4);
  expect(subscription).toMatchObject({ version: 5, status: 'active', stripeKey: 'sk_migrated', notes: ['before', 'after', 'again'] });
  expect(typeof subscription.status).toBe('string');
  expect(await subscriptionRow(named.dataSource, subscription.id)).toMatchObject({ version: 5, status: 'active', notes: ['before', 'after', 'again'] });
  expect(await subscriptionRow(named.dataSource, fresh.aggregateId)).toMatchObject({ version: 1, status: 'pending', userId: 46 });
  // At most one refused execution per statement text (the note's, the activation's, the creation's).
  const refused = named.log.errors.slice(errorsBefore).filter((entry) => /cached plan must not change result type/.test(String((entry.error as Error)?.message ?? entry.error)));
  expect(refused.length).toBeLessThanOrEqual(3);
  expect(await named.es.verify(Subscription)).toEqual([]);
});
