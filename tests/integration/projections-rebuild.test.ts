import { Column, DataSource, Entity, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, type DataSourceOptions, type EntityManager } from 'typeorm';
import { EventSourcing, EventSourcingConfigError, Projection, ProjectionError, ProjectionRebuildError, UsageError, type AggregateEvent } from 'typeorm-event-sourcing';
import { freshDatabase, testDataSource } from '../support/database';
import { waitFor } from '../support/processes';
import { horizonPassed } from '../support/projection-read-model';
import {
  countOf,
  mark,
  markTable,
  namesOn,
  RebuildCustomer,
  shadowSchemas,
  UserLine,
  UserTotal,
} from '../support/rebuild-read-models';
import { rejectionOf } from '../support/rejection';
import { Subscription, SubscriptionCreated, subscriptionEntities } from '../support/subscription-model';

/**
 * es.projections.rebuild: by swap, fresh copies of the owned tables filled beside the live ones
 * and swapped in by one transaction (readers see the old model, then the new one; a live runner
 * goes on; names stay, so migration:generate stays quiet), or in place where a swap cannot be
 * done; refusals name what a swap would lose.
 */

/** A table another (not owned) table references: rebuilt in place. */
@Entity('rebuild_plans')
class Plan {
  @PrimaryColumn({ type: 'int' }) userId!: number;
  @Column({ type: 'int' }) count!: number;
}

@Entity('rebuild_plan_notes')
class PlanNote {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', nullable: true }) planUserId!: number | null;
  @ManyToOne(() => Plan, { nullable: true, onDelete: 'SET NULL' }) @JoinColumn({ name: 'planUserId' }) plan?: Plan | null;
}

/** An entity naming its schema: TypeORM qualifies its name, so no search_path can redirect it. */
@Entity({ name: 'rebuild_qualified', schema: 'public' })
class Qualified {
  @PrimaryColumn({ type: 'int' }) eventId!: number;
}

const readers = markTable('rebuild_marks_readers');
const live = markTable('rebuild_marks_live');
const failing = markTable('rebuild_marks_failing');
const guarded = markTable('rebuild_marks_guarded');
const elsewhere = markTable('rebuild_marks_elsewhere');
const migrated = markTable('rebuild_marks_migrated');

let dataSource: DataSource;
let es: EventSourcing;
const errors: unknown[] = [];

beforeAll(async () => {
  dataSource = await testDataSource('projections_rebuild', [
    ...subscriptionEntities,
    RebuildCustomer,
    UserTotal,
    UserLine,
    Plan,
    PlanNote,
    Qualified,
    ...[readers, live, failing, guarded, migrated].map((marks) => marks.entity),
  ]);
  es = await EventSourcing.attach(dataSource, { onError: (error) => errors.push(error) });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function created(count: number, userId = (i: number) => i): Promise<AggregateEvent[]> {
  const written: AggregateEvent[] = [];
  for (let i = 0; i < count; i += 1) written.push(await es.append(SubscriptionCreated.build({ userId: userId(i) })));
  return written;
}

/** Every SubscriptionCreated event id so far, ascending. */
async function createdIds(): Promise<number[]> {
  const rows: { id: number }[] = await dataSource.query(`SELECT id::int AS id FROM subscription_events WHERE type = 'Subscription.Created' ORDER BY id`);
  return rows.map((row) => row.id);
}

async function eventIdsIn(table: string): Promise<number[]> {
  const rows: { id: number }[] = await dataSource.query(`SELECT event_id AS id FROM ${table} ORDER BY event_id`);
  return rows.map((row) => row.id);
}

async function statusOf(name: string) {
  return (await es.projections.status()).find((status) => status.name === name)!;
}

/** What `migration:generate` would write. */
async function schemaDiff(source: DataSource): Promise<string[]> {
  return (await source.driver.createSchemaBuilder().log()).upQueries.map((query) => query.query);
}

/** Per user: a total growing by `step` per subscription, through TypeORM's repositories. */
function totals(step: number): Projection {
  return new Projection('user-totals', { tables: [UserTotal, UserLine] }).on(SubscriptionCreated, async (event, manager: EntityManager) => {
    const repository = manager.getRepository(UserTotal);
    const userId = event.userId;
    const row =
      (await repository.findOneBy({ userId })) ??
      (await repository.save(repository.create({ userId, label: `v${step}-user-${userId}`, total: 0, customerId: userId <= 2 ? userId : null })));
    await repository.increment({ id: row.id }, 'total', step);
    await manager.getRepository(UserLine).insert({ eventId: event.id, totalId: row.id });
  });
}

test('swap: the owned tables hold the new model, the checkpoint is at the last event, names, sequences and foreign keys are the originals, and migration:generate has nothing to write', async () => {
  await dataSource.query(`INSERT INTO rebuild_customers (id, name) VALUES (1, 'ada'), (2, 'bob')`);
  const written = await created(6, (i) => [1, 2, 1, 3, 2, 1][i]);
  await horizonPassed(dataSource);
  expect(await es.projections.catchUp(totals(1))).toEqual({ processed: 6 });
  const before = { totals: await namesOn(dataSource, 'rebuild_user_totals'), lines: await namesOn(dataSource, 'rebuild_user_lines') };
  const sequences = `SELECT pg_get_serial_sequence('rebuild_user_totals', 'id') AS totals, pg_get_serial_sequence('rebuild_user_lines', 'id') AS lines`;
  const [sequencesBefore] = await dataSource.query(sequences);
  const [{ oid: oldOid }] = await dataSource.query(`SELECT 'rebuild_user_totals'::regclass::oid::int AS oid`);

  // The handlers changed (a new deploy): the same projection, by name, writing another model.
  expect(await es.projections.rebuild(totals(10), { batchSize: 4 })).toEqual({ processed: 6, mode: 'swap' });

  const rows = await dataSource.query(`SELECT "userId", label, total, "customerId" FROM rebuild_user_totals ORDER BY "userId"`);
  expect(rows).toEqual([
    { userId: 1, label: 'v10-user-1', total: 30, customerId: 1 },
    { userId: 2, label: 'v10-user-2', total: 20, customerId: 2 },
    { userId: 3, label: 'v10-user-3', total: 10, customerId: null },
  ]);
  const lines = await dataSource.query(`SELECT l."eventId", t."userId" FROM rebuild_user_lines l JOIN rebuild_user_totals t ON t.id = l."totalId" ORDER BY 1`);
  expect(lines).toEqual(written.map((event) => ({ eventId: event.id, userId: (event as SubscriptionCreated).userId })));
  const [{ oid: newOid }] = await dataSource.query(`SELECT 'rebuild_user_totals'::regclass::oid::int AS oid`);
  expect(newOid).not.toBe(oldOid);

  const last = written.at(-1)!;
  expect(await statusOf('user-totals')).toMatchObject({ checkpoint: { txId: last.txId, position: last.position }, lastError: null, lag: { events: 0 } });
  expect({ totals: await namesOn(dataSource, 'rebuild_user_totals'), lines: await namesOn(dataSource, 'rebuild_user_lines') }).toEqual(before);
  expect(await dataSource.query(sequences)).toEqual([sequencesBefore]);
  expect(await schemaDiff(dataSource)).toEqual([]);
  expect(await shadowSchemas(dataSource)).toEqual([]);

  // The serial and identity defaults still draw from their sequences.
  const [{ id: totalId }] = await dataSource.query(`INSERT INTO rebuild_user_totals ("userId", label) VALUES (99, 'later') RETURNING id`);
  expect(totalId).toBeGreaterThan(Math.max(...(await dataSource.query(`SELECT id FROM rebuild_user_totals WHERE "userId" < 99`)).map((row: { id: number }) => row.id)));
  const [{ id: lineId }] = await dataSource.query(`INSERT INTO rebuild_user_lines ("eventId", "totalId") VALUES (-1, $1) RETURNING id`, [totalId]);
  expect(lineId).toBe(written.length + 1);
  // The foreign keys are enforced, with their rules: out to a table it does not own, and between the two.
  await expect(dataSource.query(`INSERT INTO rebuild_user_totals ("userId", label, "customerId") VALUES (98, 'nobody', 42)`)).rejects.toThrow(/violates foreign key constraint/);
  await dataSource.query(`DELETE FROM rebuild_customers WHERE id = 1`);
  expect(await dataSource.query(`SELECT "customerId" FROM rebuild_user_totals WHERE "userId" = 1`)).toEqual([{ customerId: null }]);
  await dataSource.query(`DELETE FROM rebuild_user_totals WHERE id = $1`, [totalId]);
  expect(await countOf(dataSource, 'rebuild_user_lines')).toBe(written.length);
});

test('readers never see a half-built model: the old full count until the swap, then the new one; a second rebuild of the projection at the same time is refused; a crashed rebuild\'s shadow schema is dropped by the next', async () => {
  await created(100);
  const v1 = new Projection('marks-readers', { tables: [readers.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, readers.table, event));
  await horizonPassed(dataSource);
  await es.projections.catchUp(v1);
  const old = (await createdIds()).length;
  expect(await countOf(dataSource, readers.table)).toBe(old);

  // The new model marks each event twice, slowly: about a second of rebuilding.
  const slow = new Projection('marks-readers', { tables: [readers.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, readers.table, event, 2, 0.01));
  let done = false;
  const rebuilding = es.projections.rebuild(slow, { batchSize: 10 });
  rebuilding.then(
    () => (done = true),
    () => (done = true),
  );
  const [shadow] = await waitFor('the shadow schema', async () => {
    const schemas = await shadowSchemas(dataSource);
    return schemas.length > 0 && schemas;
  });
  const second = await rejectionOf(es.projections.rebuild(slow));
  expect(second).toBeInstanceOf(ProjectionRebuildError);
  expect(second.message).toBe("projection 'marks-readers': another rebuild of it is running, in this process or another: wait for it to end");

  const seen: number[] = [];
  while (!done) seen.push(await countOf(dataSource, readers.table));
  expect(await rebuilding).toEqual({ processed: old, mode: 'swap' });
  seen.push(await countOf(dataSource, readers.table));
  expect(seen.length).toBeGreaterThan(20);
  expect([...new Set(seen)]).toEqual([old, 2 * old]);
  expect(await shadowSchemas(dataSource)).toEqual([]);

  // A rebuild killed mid-way leaves its shadow schema behind; the next rebuild of the projection drops it.
  const stray = `${shadow.slice(0, -8)}deadbeef`;
  await dataSource.query(`CREATE SCHEMA ${stray}`);
  await dataSource.query(`CREATE TABLE ${stray}.${readers.table} (LIKE ${readers.table} INCLUDING ALL)`);
  const fast = new Projection('marks-readers', { tables: [readers.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, readers.table, event));
  expect(await es.projections.rebuild(fast)).toEqual({ processed: old, mode: 'swap' });
  expect(await shadowSchemas(dataSource)).toEqual([]);
  expect(await countOf(dataSource, readers.table)).toBe(old);
});

test('a live runner keeps going during a rebuild of its projection; events written meanwhile end up exactly once in the rebuilt model, and the runner goes on with it after the swap', async () => {
  await created(60);
  const projection = new Projection('marks-live', { tables: [live.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, live.table, event, 1, 0.004));
  errors.length = 0;
  const stop = new AbortController();
  // Small batches of a slow handler: short transactions, not to hold the server's horizon back.
  const running = es.projections.run(projection, { signal: stop.signal, pollInterval: 100, retryDelay: 100, batchSize: 10 });
  try {
    await waitFor('the runner to catch up', async () => (await countOf(dataSource, live.table)) === (await createdIds()).length, 30_000);
    const atStart = await countOf(dataSource, live.table);

    let done = false;
    const rebuilding = es.projections.rebuild(projection, { batchSize: 10 });
    rebuilding.then(
      () => (done = true),
      () => (done = true),
    );
    let during = 0;
    let liveGrew = false;
    while (!done && during < 150) {
      await created(1);
      during += 1;
      if (!liveGrew && (await countOf(dataSource, live.table)) > atStart) liveGrew = true;
      await sleep(5);
    }
    const result = await rebuilding;
    expect(result.mode).toBe('swap');
    expect(during).toBeGreaterThan(5);
    // The live table got the runner's events while the copy was being built.
    expect(liveGrew).toBe(true);

    await created(5);
    const all = await createdIds();
    await waitFor('the runner to handle every event on the rebuilt table', async () => (await countOf(dataSource, live.table)) === all.length, 30_000);
    expect(await eventIdsIn(live.table)).toEqual(all);
    expect((await statusOf('marks-live')).lastError).toBeNull();
    expect(errors).toEqual([]);
  } finally {
    stop.abort();
    await running;
  }
});

test('in place: a table referenced by a table the projection does not own is rebuilt in place by default, and a swap of it is refused; so is a schema-qualified entity', async () => {
  await created(3, () => 7);
  const plans = new Projection('plans', { tables: [Plan] }).on(SubscriptionCreated, async (event, manager) => {
    await manager.query(`INSERT INTO rebuild_plans ("userId", count) VALUES ($1, 1) ON CONFLICT ("userId") DO UPDATE SET count = rebuild_plans.count + 1`, [event.userId]);
  });
  await horizonPassed(dataSource);
  await es.projections.catchUp(plans);
  const counts = async () => dataSource.query(`SELECT "userId", count FROM rebuild_plans ORDER BY "userId"`);
  const expected = await counts();
  await dataSource.query(`UPDATE rebuild_plans SET count = 0`); // a model gone wrong, to be rebuilt
  await dataSource.query(`INSERT INTO rebuild_plan_notes ("planUserId") VALUES (7)`);
  const checkpoint = (await statusOf('plans')).checkpoint;

  const refused = await rejectionOf(es.projections.rebuild(plans, { mode: 'swap' }));
  expect(refused).toBeInstanceOf(ProjectionRebuildError);
  expect(refused).toMatchObject({ code: 'PROJECTION_REBUILD', projection: 'plans', table: 'public.rebuild_plans' });
  expect(refused.message).toMatch(
    /^projection 'plans', table public\.rebuild_plans: cannot be rebuilt by swap: foreign key FK_\w+ of table public\.rebuild_plan_notes, which the projection does not own, references it, so it cannot be dropped; rebuild with \{ mode: 'in-place' \}/,
  );
  expect((await counts()).every((row: { count: number }) => row.count === 0)).toBe(true);
  expect((await statusOf('plans')).checkpoint).toEqual(checkpoint);

  await horizonPassed(dataSource);
  expect(await es.projections.rebuild(plans)).toEqual({ processed: (await createdIds()).length, mode: 'in-place' });
  expect(await counts()).toEqual(expected);
  // Emptying the table followed the reference's ON DELETE rule (SET NULL here).
  expect(await dataSource.query(`SELECT "planUserId" FROM rebuild_plan_notes`)).toEqual([{ planUserId: null }]);

  const qualified = new Projection('qualified', { tables: [Qualified] }).on(SubscriptionCreated, async (event, manager) => {
    await manager.insert(Qualified, { eventId: event.id });
  });
  await horizonPassed(dataSource);
  await es.projections.catchUp(qualified);
  expect(await rejectionOf(es.projections.rebuild(qualified, { mode: 'swap' }))).toMatchObject({
    name: 'ProjectionRebuildError',
    message: expect.stringContaining('cannot be rebuilt by swap: its entity Qualified is schema-qualified'),
  });
  await horizonPassed(dataSource);
  expect(await es.projections.rebuild(qualified)).toEqual({ processed: (await createdIds()).length, mode: 'in-place' });
  expect(await countOf(dataSource, 'rebuild_qualified')).toBe((await createdIds()).length);
});

test("in place: a DataSource with a schema option qualifies every table, so its projections' tables are rebuilt in place", async () => {
  const url = await freshDatabase('projections_rebuild_schema');
  const inSchema = new DataSource({ type: 'postgres', url, schema: 'rebuild_app', entities: [...subscriptionEntities, elsewhere.entity], logging: false } as DataSourceOptions);
  await inSchema.initialize();
  await inSchema.query(`CREATE SCHEMA rebuild_app`);
  await inSchema.synchronize();
  const esInSchema = await EventSourcing.attach(inSchema, { createSchema: true });
  try {
    for (let i = 0; i < 4; i += 1) await esInSchema.append(SubscriptionCreated.build({ userId: i }));
    const projection = new Projection('elsewhere', { tables: [elsewhere.entity] }).on(SubscriptionCreated, async (event, manager) => {
      await manager.insert(elsewhere.entity, { eventId: event.id });
    });
    await horizonPassed(inSchema);
    await esInSchema.projections.catchUp(projection);
    await horizonPassed(inSchema);
    expect(await esInSchema.projections.rebuild(projection)).toEqual({ processed: 4, mode: 'in-place' });
    expect(await countOf(inSchema, `rebuild_app.${elsewhere.table}`)).toBe(4);
    const refused = await rejectionOf(esInSchema.projections.rebuild(projection, { mode: 'swap' }));
    expect(refused).toMatchObject({ name: 'ProjectionRebuildError', table: `rebuild_app.${elsewhere.table}` });
    expect(refused.message).toMatch(/is schema-qualified \(an entity schema or the DataSource's schema option\)/);
  } finally {
    await esInSchema.close();
    await inSchema.destroy();
  }
});

test('a handler throwing mid-rebuild: ProjectionError naming the event; the live table, the checkpoint and the status are untouched, and no shadow schema is left', async () => {
  await created(20);
  const good = new Projection('marks-failing', { tables: [failing.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, failing.table, event));
  await horizonPassed(dataSource);
  await es.projections.catchUp(good);
  const ids = await eventIdsIn(failing.table);
  const before = await statusOf('marks-failing');

  const all = await createdIds();
  const failOn = all[Math.floor(all.length / 2)];
  const broken = new Projection('marks-failing', { tables: [failing.entity] }).on(SubscriptionCreated, async (event, manager) => {
    await mark(manager, failing.table, event, 2);
    if (event.id === failOn) throw new Error('the new handler has a bug');
  });
  const error = await rejectionOf(es.projections.rebuild(broken, { batchSize: 7 }));
  expect(error).toBeInstanceOf(ProjectionError);
  expect(error).toMatchObject({ projection: 'marks-failing', eventId: failOn, eventType: 'Subscription.Created', table: 'subscription_events' });
  expect(error.message).toMatch(/the new handler has a bug$/);
  expect(await eventIdsIn(failing.table)).toEqual(ids);
  expect(await statusOf('marks-failing')).toEqual(before);
  expect(await shadowSchemas(dataSource)).toEqual([]);
});

test('a table migrated while it is being rebuilt: the swap refuses the stale copy, and the table stays as the migration left it', async () => {
  const marks = (sleep: number) => new Projection('marks-migrated', { tables: [migrated.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, migrated.table, event, 1, sleep));
  await horizonPassed(dataSource);
  await es.projections.catchUp(marks(0));
  const ids = await eventIdsIn(migrated.table);
  const rebuilding = rejectionOf(es.projections.rebuild(marks(0.002), { batchSize: 20 }));
  await waitFor('the shadow schema', async () => (await shadowSchemas(dataSource)).length > 0);
  await dataSource.query(`ALTER TABLE ${migrated.table} ADD COLUMN note text`);
  const error = await rebuilding;
  expect(error).toBeInstanceOf(ProjectionRebuildError);
  expect(error.message).toBe(
    `projection 'marks-migrated', table public.${migrated.table}: changed while it was being rebuilt (a migration?), so the rebuilt copy is out of date: nothing was swapped; rebuild again`,
  );
  expect(await eventIdsIn(migrated.table)).toEqual(ids);
  expect(await dataSource.query(`SELECT count(note)::int AS n FROM ${migrated.table}`)).toEqual([{ n: 0 }]);
  expect(await shadowSchemas(dataSource)).toEqual([]);
});

test('a trigger, a view or a grant on an owned table: the swap is refused, naming the table and what it would lose; in place works', async () => {
  await created(2);
  const projection = new Projection('marks-guarded', { tables: [guarded.entity] }).on(SubscriptionCreated, (event, manager) => mark(manager, guarded.table, event));
  await horizonPassed(dataSource);
  await es.projections.catchUp(projection);
  const count = await countOf(dataSource, guarded.table);
  await dataSource.query(`CREATE FUNCTION rebuild_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
  await dataSource.query(`CREATE TRIGGER audit_marks BEFORE INSERT ON ${guarded.table} FOR EACH ROW EXECUTE FUNCTION rebuild_guard()`);

  const refused = await rejectionOf(es.projections.rebuild(projection));
  expect(refused).toBeInstanceOf(ProjectionRebuildError);
  expect(refused.message).toBe(
    `projection 'marks-guarded', table public.${guarded.table}: cannot be rebuilt by swap: trigger audit_marks on table public.${guarded.table} would be lost. ` +
      `Rebuild with { mode: 'in-place' } (readers see it partly built until it has caught up), or remove that for the rebuild and restore it after`,
  );
  expect(await shadowSchemas(dataSource)).toEqual([]);
  expect(await countOf(dataSource, guarded.table)).toBe(count);

  await dataSource.query(`CREATE VIEW rebuild_guarded_view AS SELECT event_id FROM ${guarded.table}`);
  expect((await rejectionOf(es.projections.rebuild(projection))).message).toContain(
    `cannot be rebuilt by swap: trigger audit_marks on table public.${guarded.table} would be lost; view public.rebuild_guarded_view depends on it.`,
  );
  await dataSource.query(`DROP TRIGGER audit_marks ON ${guarded.table}`);
  await dataSource.query(`DROP VIEW rebuild_guarded_view`);
  // Roles are the server's: one of this file's own, made once.
  await dataSource.query(`DO $$ BEGIN CREATE ROLE es_rebuild_test_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  await dataSource.query(`GRANT SELECT ON ${guarded.table} TO es_rebuild_test_reader`);
  expect((await rejectionOf(es.projections.rebuild(projection))).message).toContain(
    `table public.${guarded.table}: cannot be rebuilt by swap: its grants (SELECT to es_rebuild_test_reader) would be lost.`,
  );
  expect(await shadowSchemas(dataSource)).toEqual([]);
  await dataSource.query(`CREATE TRIGGER audit_marks BEFORE INSERT ON ${guarded.table} FOR EACH ROW EXECUTE FUNCTION rebuild_guard()`);

  await horizonPassed(dataSource);
  expect(await es.projections.rebuild(projection, { mode: 'in-place' })).toEqual({ processed: (await createdIds()).length, mode: 'in-place' });
  expect(await eventIdsIn(guarded.table)).toEqual(await createdIds());
  // Still there: an in-place rebuild keeps the table.
  expect(await dataSource.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = '${guarded.table}'::regclass`)).toEqual([{ tgname: 'audit_marks' }]);
});

test('the owned tables are checked: entity classes of the DataSource, never an aggregate or events; a projection without tables is replayed from the first event onto its tables as they are', async () => {
  class NotAnEntity {}
  expect(() => new Projection('checked', { tables: [NotAnEntity] })).toThrow(
    new EventSourcingConfigError("projection 'checked': NotAnEntity in its tables is not an entity class (a class decorated with @Entity)"),
  );
  expect(() => new Projection('checked', { tables: [SubscriptionCreated] })).toThrow(/SubscriptionCreated in its tables is an event class/);
  expect(() => new Projection('checked', { tables: 'rebuild_plans' as never })).toThrow(UsageError);
  expect(() => new Projection('checked', { tables: 'rebuild_plans' as never })).toThrow("new Projection('checked'): tables must be an array of entity classes, got string");
  expect(() => new Projection('checked', null as never)).toThrow(UsageError);

  const handles = (projection: Projection) => projection.on(SubscriptionCreated, () => undefined);
  await expect(es.projections.rebuild(handles(new Projection('checked', { tables: [elsewhere.entity] })))).rejects.toThrow(
    new EventSourcingConfigError(
      `es.projections.rebuild('checked'): Mark (in the tables of projection 'checked') is not an entity of this DataSource: list it in the DataSource's entities`,
    ),
  );
  await expect(es.projections.rebuild(handles(new Projection('checked', { tables: [Subscription] })))).rejects.toThrow(/Subscription \(in the tables of projection 'checked'\) is an aggregate's or its events' table/);
  await expect(es.projections.rebuild(handles(new Projection('checked')), { mode: 'sideways' as never })).rejects.toThrow(
    new UsageError("es.projections.rebuild('checked')", 'mode', `must be 'swap' or 'in-place', got "sideways"`),
  );
  await expect(es.projections.rebuild(handles(new Projection('checked')), { mode: 'swap' })).rejects.toThrow(ProjectionRebuildError);

  // Without tables: the checkpoint starts over and every event is handled again, on top of what
  // the handler wrote before, which an idempotent handler (an upsert setting, not adding) absorbs.
  await dataSource.query(`CREATE TABLE rebuild_seen (event_id int PRIMARY KEY, seen int NOT NULL)`);
  let round = 1;
  const seen = new Projection('seen').on(SubscriptionCreated, async (event, manager) => {
    await manager.query(`INSERT INTO rebuild_seen VALUES ($1, $2) ON CONFLICT (event_id) DO UPDATE SET seen = EXCLUDED.seen`, [event.id, round]);
  });
  await horizonPassed(dataSource);
  await es.projections.catchUp(seen);
  round = 2;
  const all = await createdIds();
  expect(await es.projections.rebuild(seen)).toEqual({ processed: all.length, mode: 'in-place' });
  expect(await dataSource.query(`SELECT count(*)::int AS n, min(seen) AS min FROM rebuild_seen`)).toEqual([{ n: all.length, min: 2 }]);
});
