import { rejectionOf } from '../support/rejection';
import { DataSource, type DataSourceOptions, type EntityManager } from 'typeorm';
import {
  EventSourcing,
  EventSourcingConfigError,
  UsageError,
  eventSourcingMigration,
  type AggregateEvent,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { ReplayLedger, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import { Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

const allEntities = [...subscriptionEntities, ...replayLedgerEntities];
const EVENTS_TABLES = ['subscription_events', 'replay_ledger_events'];

/** The error a promise rejects with (fails the test when it resolves). */

async function count(dataSource: DataSource, sql: string, parameters: unknown[] = []): Promise<number> {
  const [row] = await dataSource.query(`SELECT count(*)::int AS "n" FROM (${sql}) AS "matches"`, parameters);
  return row.n;
}

const triggers = (dataSource: DataSource, table: string) =>
  count(dataSource, `SELECT 1 FROM pg_trigger WHERE tgname = 'es_append_only' AND tgrelid = $1::regclass`, [`"${table}"`]);
const sequences = (dataSource: DataSource) =>
  count(dataSource, `SELECT 1 FROM pg_class WHERE relkind = 'S' AND relname = 'es_event_position'`);
const functions = (dataSource: DataSource) => count(dataSource, `SELECT 1 FROM pg_proc WHERE proname = 'es_refuse_event_change'`);

/** The database objects the library adds, as counts: every value 1 when present, 0 when absent. */
async function objects(dataSource: DataSource, tables: readonly string[]): Promise<Record<string, number>> {
  const result: Record<string, number> = { sequence: await sequences(dataSource), function: await functions(dataSource) };
  for (const table of tables) result[`trigger on ${table}`] = await triggers(dataSource, table);
  return result;
}

function expectObjects(present: 0 | 1, tables: readonly string[]): Record<string, number> {
  const result: Record<string, number> = { sequence: present, function: present };
  for (const table of tables) result[`trigger on ${table}`] = present;
  return result;
}

/** What `migration:generate` would write: the up queries of TypeORM's schema diff. */
async function schemaDiff(dataSource: DataSource): Promise<string[]> {
  const log = await dataSource.driver.createSchemaBuilder().log();
  return log.upQueries.map((query) => query.query);
}

async function expectAppendOnly(dataSource: DataSource, table: string): Promise<void> {
  for (const [operation, sql] of [
    ['UPDATE', `UPDATE "${table}" SET "metadata" = '{"forged":true}'::jsonb`],
    ['DELETE', `DELETE FROM "${table}"`],
  ] as const) {
    const error = await rejectionOf(dataSource.query(sql));
    expect(error.message).toBe(`events are append-only: ${operation} on public.${table} refused`);
    expect((error as { driverError?: { code?: string } }).driverError?.code).toBe('23001');
  }
}

async function writeSomeEvents(manager: EntityManager): Promise<AggregateEvent[]> {
  const created = await manager.save(SubscriptionCreated.build({ userId: 1 }));
  const opened = await manager.save(ReplayLedgerOpened.build({ owner: 'bob' }));
  const subscription = await manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sk_pos' }));
  const ledger = await manager.findOneByOrFail(ReplayLedger, { id: opened.aggregateId });
  const credited = await manager.save(ReplayLedgerCredited.build({ replayLedger: ledger, amount: 3, memo: 'three' }));
  const noted = await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'n' }));
  return [created, opened, activated, credited, noted];
}

describe('es.schema', () => {
  let dataSource: DataSource;
  let es: EventSourcing;
  beforeAll(async () => {
    dataSource = await testDataSource('schema_sql', allEntities);
    es = await EventSourcing.attach(dataSource);
  });
  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  test('sql() holds the sequence, the refusing function and one trigger per events table', () => {
    const sql = es.schema.sql();
    expect(sql).toContain('CREATE SEQUENCE IF NOT EXISTS es_event_position;');
    expect(sql).toContain('CREATE OR REPLACE FUNCTION es_refuse_event_change() RETURNS trigger LANGUAGE plpgsql');
    expect(sql).toContain(`RAISE EXCEPTION 'events are append-only: % on %.% refused'`);
    for (const table of EVENTS_TABLES) {
      expect(sql).toContain(`CREATE TRIGGER es_append_only BEFORE UPDATE OR DELETE ON "${table}"`);
    }
    expect(sql.match(/CREATE TRIGGER es_append_only/g)).toHaveLength(EVENTS_TABLES.length);
    expect(sql.match(/CREATE TRIGGER es_no_truncate BEFORE TRUNCATE/g)).toHaveLength(EVENTS_TABLES.length);
    for (const statement of es.schema.statements()) expect(sql).toContain(`${statement};`);
  });

  test('attach (synchronize on) created the objects, and the events tables refuse UPDATE and DELETE', async () => {
    expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));
    await writeSomeEvents(dataSource.manager);
    for (const table of EVENTS_TABLES) await expectAppendOnly(dataSource, table);
  });

  test('create() and the SQL text run as raw queries are idempotent and keep the sequence going', async () => {
    const [before] = await dataSource.query('SELECT max("position")::int AS "max" FROM (SELECT "position" FROM "subscription_events" UNION ALL SELECT "position" FROM "replay_ledger_events") AS "p"');
    expect(before.max).toBeGreaterThan(0);

    await es.schema.create();
    await es.schema.create();
    await dataSource.query(es.schema.sql());
    await dataSource.query(es.schema.sql());
    expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));

    const event = await dataSource.manager.save(SubscriptionCreated.build({ userId: 2 }));
    const [loaded] = await dataSource.query('SELECT "position"::int AS "position" FROM "subscription_events" WHERE "id" = $1', [event.id]);
    expect(loaded.position).toBeGreaterThan(before.max);
    for (const table of EVENTS_TABLES) await expectAppendOnly(dataSource, table);
  });

  test('drop() removes the objects and create() brings them back', async () => {
    await es.schema.drop();
    expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(0, EVENTS_TABLES));
    await es.schema.drop(); // idempotent too
    // Without the trigger the table is an ordinary table again.
    await dataSource.query(`UPDATE "replay_ledger_events" SET "metadata" = "metadata"`);

    await es.schema.create();
    expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));
    for (const table of EVENTS_TABLES) await expectAppendOnly(dataSource, table);
  });
});

describe('eventSourcingMigration(timestamp)', () => {
  test('is a migration class named after its timestamp; a timestamp that is not 13 digits is a UsageError', () => {
    const migration = eventSourcingMigration(1764115200000);
    expect(migration.name).toBe('EventSourcingSchema1764115200000');
    expect(new migration().name).toBe('EventSourcingSchema1764115200000');
    for (const bad of [176411520000, 1.5, Number.NaN, 17641152000000]) {
      expect(() => eventSourcingMigration(bad)).toThrow(UsageError);
      expect(() => eventSourcingMigration(bad)).toThrow(`eventSourcingMigration: timestamp must be a 13-digit millisecond timestamp, got ${bad}`);
    }
  });

  test('up creates the sequence and triggers on tables made by synchronize(), down removes them', async () => {
    const Migration = eventSourcingMigration(1764115200000);
    const dataSource = await testDataSource('schema_migration', allEntities, {
      synchronize: false,
      migrations: [Migration],
    });
    let es: EventSourcing | undefined;
    try {
      // Tables first (what migration:generate's migration does), before the sequence exists.
      await dataSource.synchronize();
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(0, EVENTS_TABLES));

      const ran = await dataSource.runMigrations();
      expect(ran.map((migration) => migration.name)).toEqual(['EventSourcingSchema1764115200000']);
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));
      expect(await dataSource.query('SELECT "name" FROM "migrations"')).toEqual([{ name: 'EventSourcingSchema1764115200000' }]);

      // Running up again by hand is harmless.
      const queryRunner = dataSource.createQueryRunner();
      try {
        await new Migration().up(queryRunner);
        await new Migration().up(queryRunner);
      } finally {
        await queryRunner.release();
      }
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));

      // attach does not create anything itself here (synchronize is off) and the writes work.
      es = await EventSourcing.attach(dataSource);
      const events = await writeSomeEvents(dataSource.manager);
      const positions = await dataSource.query(
        'SELECT "position"::int AS "position" FROM "subscription_events" UNION ALL SELECT "position"::int FROM "replay_ledger_events" ORDER BY 1',
      );
      expect(positions).toHaveLength(events.length);
      for (const table of EVENTS_TABLES) await expectAppendOnly(dataSource, table);

      await dataSource.undoLastMigration();
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(0, EVENTS_TABLES));
      expect(await dataSource.query('SELECT "name" FROM "migrations"')).toEqual([]);

      await dataSource.runMigrations();
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));
    } finally {
      await es?.close();
      await dataSource.destroy();
    }
  });

  test('runs through migrationsRun on a DataSource whose tables already exist', async () => {
    const first = await testDataSource('schema_migrations_run', replayLedgerEntities, { synchronize: false });
    const url = (first.options as { url: string }).url;
    await first.synchronize();
    await first.destroy();

    const dataSource = new DataSource({
      type: 'postgres',
      url,
      entities: replayLedgerEntities,
      migrations: [eventSourcingMigration(1764115200000)],
      migrationsRun: true,
      synchronize: false,
      logging: false,
    } as DataSourceOptions);
    await dataSource.initialize();
    try {
      expect(await objects(dataSource, ['replay_ledger_events'])).toEqual(expectObjects(1, ['replay_ledger_events']));
      expect(await schemaDiff(dataSource)).toEqual([]);
    } finally {
      await dataSource.destroy();
    }
  });
});

describe('TypeORM schema diff (what migration:generate would emit)', () => {
  test('is empty after synchronize and attach', async () => {
    const dataSource = await testDataSource('schema_diff', replayLedgerEntities);
    const es = await EventSourcing.attach(dataSource);
    try {
      expect(await schemaDiff(dataSource)).toEqual([]);
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });

  test('touches no events table when several aggregates share the position sequence', async () => {
    const dataSource = await testDataSource('schema_diff_all', allEntities);
    const es = await EventSourcing.attach(dataSource);
    try {
      // The test model's own `notes` default (`'[]'::jsonb`, a cast TypeORM strips when it
      // reads defaults back) is the model's business, not the library's: only look at ours.
      const ours = (await schemaDiff(dataSource)).filter((query) => /_events|position|tx_id|es_event/.test(query));
      expect(ours).toEqual([]);
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });
});

describe('position and tx_id', () => {
  let dataSource: DataSource;
  let es: EventSourcing;
  beforeAll(async () => {
    dataSource = await testDataSource('schema_position', allEntities);
    es = await EventSourcing.attach(dataSource);
  });
  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  test('position increases across the events tables of different aggregates (one sequence)', async () => {
    const events = await writeSomeEvents(dataSource.manager);
    const rows: { table: string; id: number; position: number }[] = await dataSource.query(`
      SELECT 'subscription_events' AS "table", "id"::int AS "id", "position"::int AS "position" FROM "subscription_events"
      UNION ALL
      SELECT 'replay_ledger_events', "id"::int, "position"::int FROM "replay_ledger_events"
      ORDER BY "position"`);
    const tableOf = (event: AggregateEvent) => (event instanceof SubscriptionCreated || event instanceof SubscriptionActivated || event instanceof SubscriptionNoteAdded ? 'subscription_events' : 'replay_ledger_events');
    // Ordered by position, the rows are exactly the write order, alternating between the tables.
    expect(rows.map((row) => [row.table, row.id])).toEqual(events.map((event) => [tableOf(event), event.id]));
    const positions = rows.map((row) => row.position);
    expect(new Set(positions).size).toBe(positions.length);
    const [sequence] = await dataSource.query('SELECT last_value::int AS "last" FROM es_event_position');
    expect(sequence.last).toBe(positions[positions.length - 1]);

    // The typed events carry the same positions.
    const history = [...(await es.history(Subscription, events[0].aggregateId)), ...(await es.history(ReplayLedger, events[1].aggregateId))];
    const byId = new Map(rows.map((row) => [`${row.table}:${row.id}`, row.position]));
    for (const event of history) {
      expect(typeof event.position).toBe('number');
      expect(event.position).toBe(byId.get(`${tableOf(event)}:${event.id}`));
    }
  });

  test('tx_id is the writing transaction: equal within one, different across two', async () => {
    let xact = '';
    const inOne = await dataSource.transaction(async (manager) => {
      const events = await writeSomeEvents(manager);
      [{ xact }] = await manager.query('SELECT pg_current_xact_id()::text AS "xact"');
      return events;
    });
    const alone = await dataSource.manager.save(SubscriptionCreated.build({ userId: 9 }));
    const other = await dataSource.manager.save(ReplayLedgerOpened.build({ owner: 'eve' }));

    const txOf = async (table: string, id: number): Promise<number> => {
      const [row] = await dataSource.query(`SELECT "tx_id"::text AS "tx" FROM "${table}" WHERE "id" = $1`, [id]);
      return Number(row.tx);
    };
    const tableOf = (event: AggregateEvent) => (event instanceof ReplayLedgerOpened || event instanceof ReplayLedgerCredited ? 'replay_ledger_events' : 'subscription_events');
    const inOneTx = await Promise.all(inOne.map((event) => txOf(tableOf(event), event.id)));
    expect(new Set(inOneTx)).toEqual(new Set([Number(xact)]));
    const aloneTx = await txOf('subscription_events', alone.id);
    const otherTx = await txOf('replay_ledger_events', other.id);
    expect(aloneTx).not.toBe(Number(xact));
    expect(otherTx).not.toBe(Number(xact));
    expect(otherTx).not.toBe(aloneTx);

    // Loaded events expose it as a number.
    const [loaded] = await es.history(Subscription, alone.aggregateId);
    expect(loaded.txId).toBe(aloneTx);
  });
});

describe('EventSourcing.attach and close', () => {
  test('createSchema: false on a fresh database creates neither trigger nor sequence', async () => {
    const dataSource = await testDataSource('schema_no_create', allEntities);
    const es = await EventSourcing.attach(dataSource, { createSchema: false });
    try {
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(0, EVENTS_TABLES));
      await es.schema.create();
      expect(await objects(dataSource, EVENTS_TABLES)).toEqual(expectObjects(1, EVENTS_TABLES));
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });

  test('a DataSource that is not initialized is EventSourcingConfigError', async () => {
    const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: allEntities } as DataSourceOptions);
    const error = await rejectionOf(EventSourcing.attach(dataSource));
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe('EventSourcing.attach needs an initialized DataSource: call dataSource.initialize() first');
    expect((error as EventSourcingConfigError).code).toBe('CONFIG');
    expect(dataSource.isInitialized).toBe(false);
  });

  test('attaching twice is EventSourcingConfigError; close is idempotent and ends the instance', async () => {
    const dataSource = await testDataSource('schema_attach', allEntities);
    const subscribersBefore = dataSource.subscribers.length;
    const es = await EventSourcing.attach(dataSource);
    try {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 4 }));
      const id = created.aggregateId as number;

      const twice = await rejectionOf(EventSourcing.attach(dataSource));
      expect(twice).toBeInstanceOf(EventSourcingConfigError);
      expect(twice.message).toBe('EventSourcing is already attached to this DataSource: close() the other instance first');
      expect(dataSource.subscribers.length).toBe(subscribersBefore + 1);
      expect(await es.history(Subscription, id)).toHaveLength(1); // the first instance still works

      await es.close();
      await es.close();
      expect(dataSource.subscribers.length).toBe(subscribersBefore);

      const closed = 'this EventSourcing instance is closed';
      const calls: [string, () => Promise<unknown>][] = [
        ['history', () => es.history(Subscription, id)],
        ['stateAt', () => es.stateAt(Subscription, id, { version: 1 })],
        ['rebuild', () => es.rebuild(Subscription, id)],
        ['rebuildAll', () => es.rebuildAll(Subscription)],
        ['verify', () => es.verify(Subscription)],
        ['append', () => es.append(SubscriptionCreated.build({ userId: 5 }))],
      ];
      for (const [name, call] of calls) {
        const error = await rejectionOf(call());
        expect([name, error]).toEqual([name, expect.any(EventSourcingConfigError)]);
        expect(error.message).toBe(closed);
      }

      // After close the DataSource can be attached again.
      const again = await EventSourcing.attach(dataSource);
      try {
        expect(await again.history(Subscription, id)).toHaveLength(1);
        const next = await dataSource.manager.save(SubscriptionActivated.build({ subscription: await dataSource.manager.findOneByOrFail(Subscription, { id }), stripeKey: 'sk_again' }));
        expect(next.version).toBe(2);
      } finally {
        await again.close();
      }
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });
});
