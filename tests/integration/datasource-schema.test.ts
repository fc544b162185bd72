import { DataSource, type DataSourceOptions, type MigrationInterface, type QueryRunner } from 'typeorm';
import { Dispatcher, EventSourcing, EventSourcingConfigError, eventSourcingMigration, type ReactorContext } from 'typeorm-event-sourcing';
import { resetEventStore, waitForReactors } from 'typeorm-event-sourcing/testing';
import { freshDatabase } from '../support/database';
import { obliterateQueue, waitFor } from '../support/processes';
import { rejectionOf } from '../support/rejection';
import { billingEntities, Invoice, InvoiceIssued, InvoicePaid, InvoiceReceipt } from '../support/billing-model';

/**
 * Issue 10: a DataSource with `schema: 'billing'` (tables in a schema of their own, the
 * connection's search_path left at `"$user", public`) works everywhere: the sequence, outbox,
 * identity and trigger functions are created in that schema and every query names it, so nothing
 * lands in, or is read from, `public`.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const run = `${process.pid}-${Date.now()}`;
const queueNames: string[] = [];
function queueName(which: string): string {
  const name = `datasource-schema-${which}-${run}`;
  queueNames.push(name);
  return name;
}

const LIBRARY_OBJECTS = ['es_event_position', 'es_outbox', 'es_identity', 'es_refuse_event_change', 'es_assign_position'];

/** For each of the library's objects, the schemas it exists in. */
async function placesOf(dataSource: DataSource): Promise<Record<string, string[]>> {
  const rows: { name: string; schema: string }[] = await dataSource.query(
    `SELECT relname AS name, nspname AS schema FROM pg_class JOIN pg_namespace ON pg_namespace.oid = relnamespace WHERE relname = ANY($1)
     UNION ALL
     SELECT proname, nspname FROM pg_proc JOIN pg_namespace ON pg_namespace.oid = pronamespace WHERE proname = ANY($1)
     ORDER BY 1, 2`,
    [LIBRARY_OBJECTS],
  );
  const places: Record<string, string[]> = {};
  for (const row of rows) (places[row.name] ??= []).push(row.schema);
  return places;
}

function everyObjectIn(...schemas: string[]): Record<string, string[]> {
  return Object.fromEntries(LIBRARY_OBJECTS.map((name) => [name, schemas]));
}

/** The library's triggers on an events table. */
async function triggersOn(dataSource: DataSource, table: string): Promise<string[]> {
  const rows: { name: string }[] = await dataSource.query(`SELECT tgname AS name FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1`, [table]);
  return rows.map((row) => row.name);
}

/** What `migration:generate` would write: the up queries of TypeORM's schema diff. */
async function schemaDiff(dataSource: DataSource): Promise<string[]> {
  return (await dataSource.driver.createSchemaBuilder().log()).upQueries.map((query) => query.query);
}

async function count(dataSource: DataSource, table: string): Promise<number> {
  const [{ n }] = await dataSource.query(`SELECT count(*)::int AS n FROM ${table}`);
  return n;
}

async function identityIn(dataSource: DataSource, schema: string): Promise<string> {
  const [{ id }] = await dataSource.query(`SELECT id::text AS id FROM ${schema}.es_identity`);
  return id;
}

async function lastPosition(dataSource: DataSource, sequence: string): Promise<number> {
  const [{ last }] = await dataSource.query(`SELECT last_value::int AS last FROM ${sequence}`);
  return last;
}

/** A DataSource on `url`, initialized, after creating `schema` when it names one (TypeORM creates tables, not schemas). */
async function initialized(url: string, schema: string | undefined, extra: Partial<DataSourceOptions> = {}): Promise<DataSource> {
  const dataSource = new DataSource({ type: 'postgres', url, entities: billingEntities, logging: false, ...(schema ? { schema } : {}), ...extra } as DataSourceOptions);
  await dataSource.initialize();
  if (schema) await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  return dataSource;
}

async function issueAndPay(dataSource: DataSource, customer: string): Promise<{ issued: InvoiceIssued; paid: InvoicePaid }> {
  const issued = await dataSource.manager.save(InvoiceIssued.build({ customer, amount: 120 }));
  const invoice = await dataSource.manager.findOneByOrFail(Invoice, { id: issued.aggregateId });
  const paid = await dataSource.manager.save(InvoicePaid.build({ invoice, reference: `ref-${customer}` }));
  return { issued, paid };
}

const asyncRuns: { eventId: number; jobId: string | undefined }[] = [];
function Remind(event: InvoicePaid, ctx: ReactorContext) {
  asyncRuns.push({ eventId: event.id, jobId: ctx.job?.id });
}
async function Receipt(event: InvoicePaid, ctx: ReactorContext) {
  // Through ctx.manager: the receipt commits, or rolls back, with the event.
  await ctx.manager.insert(InvoiceReceipt, { invoiceId: event.aggregateId, reference: event.reference });
}
const dispatcher = () => new Dispatcher().on(InvoicePaid, { trigger: Receipt, async: Remind });

afterAll(async () => {
  for (const name of queueNames) await obliterateQueue(name, redisUrl);
});

describe("a DataSource with schema: 'billing'", () => {
  let dataSource: DataSource;
  let es: EventSourcing;

  beforeAll(async () => {
    dataSource = await initialized(await freshDatabase('datasource_schema'), 'billing');
    await dataSource.synchronize();
    es = await EventSourcing.attach(dataSource, {
      dispatcher: dispatcher(),
      createSchema: true,
      queue: { connection: redisUrl, name: queueName('billing'), relay: { grace: 0, interval: 100 } },
    });
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  beforeEach(() => {
    asyncRuns.length = 0;
  });

  test('with the default search_path, every object of the library is in billing and none in public; migration:generate has nothing to write', async () => {
    const [{ search_path }] = await dataSource.query('SHOW search_path');
    expect(search_path).toBe('"$user", public');
    expect(await placesOf(dataSource)).toEqual(everyObjectIn('billing'));
    expect(await triggersOn(dataSource, 'billing.invoice_events')).toEqual(['es_append_only', 'es_no_truncate', 'es_position']);
    const sql = es.schema.sql();
    for (const name of ['es_event_position', 'es_outbox', 'es_identity']) expect(sql).toContain(`"billing"."${name}"`);
    expect(sql).toContain('CREATE TRIGGER es_position BEFORE INSERT ON "billing"."invoice_events"');
    expect(await schemaDiff(dataSource)).toEqual([]);
  });

  test('events are written, replayed, verified and rebuilt in billing; positions come from billing.es_event_position; both reactors run', async () => {
    const { issued, paid } = await issueAndPay(dataSource, 'ada');
    expect(paid.version).toBe(2);
    expect(paid.position).toBe(issued.position + 1);
    expect(await lastPosition(dataSource, 'billing.es_event_position')).toBe(paid.position);
    const stored = await dataSource.query(`SELECT type, position::int AS position FROM billing.invoice_events ORDER BY id`);
    expect(stored).toEqual([
      { type: 'Invoice.Issued', position: issued.position },
      { type: 'Invoice.Paid', position: paid.position },
    ]);
    const [row] = await dataSource.query(`SELECT status, version FROM billing.invoice WHERE id = $1`, [issued.aggregateId]);
    expect(row).toEqual({ status: 'paid', version: 2 });
    // The trigger reactor wrote in the event's transaction, into billing too.
    expect(await dataSource.query(`SELECT "invoiceId", reference FROM billing.invoice_receipt`)).toEqual([{ invoiceId: issued.aggregateId, reference: 'ref-ada' }]);

    expect((await es.history(Invoice, issued.aggregateId)).map((event) => [event.type, event.position])).toEqual([
      ['Invoice.Issued', issued.position],
      ['Invoice.Paid', paid.position],
    ]);
    expect(await es.stateAt(Invoice, issued.aggregateId, { version: 1 })).toMatchObject({ customer: 'ada', amount: 120, status: 'issued', version: 1 });
    expect(await es.verify(Invoice)).toEqual([]);

    await dataSource.query(`UPDATE billing.invoice SET status = 'forged' WHERE id = $1`, [issued.aggregateId]);
    expect(await es.verify(Invoice)).toEqual([{ id: issued.aggregateId, column: 'status', stored: 'forged', replayed: 'paid', reason: 'drift' }]);
    expect(await es.rebuildAll(Invoice)).toEqual({ processed: 1, total: 1, rebuilt: 1 });
    expect(await es.verify(Invoice)).toEqual([]);

    // The job went through billing.es_outbox and was signed with billing.es_identity's secret.
    const worker = es.worker();
    try {
      await waitForReactors(es, { timeout: 15_000 });
    } finally {
      await worker.close();
    }
    const identity = await identityIn(dataSource, 'billing');
    expect(asyncRuns).toEqual([{ eventId: paid.id, jobId: expect.stringMatching(new RegExp(`^${identity}\\.${paid.position}\\.Remind\\.`)) }]);
    expect(await count(dataSource, 'billing.es_outbox')).toBe(0);
  });

  test("an outbox row left by a crash between COMMIT and the hand-over is delivered by es.worker()'s relay", async () => {
    const { paid } = await issueAndPay(dataSource, 'bob');
    // The after-commit hand-over added the job and deleted the row; put the database and Redis
    // back as a crash right after COMMIT leaves them: the row, and no job.
    await waitFor('the hand-over', async () => (await count(dataSource, 'billing.es_outbox')) === 0, 10_000, 20);
    const job = (await es.queue.getJobs(['waiting'])).find((candidate) => candidate.data.id === paid.id)!;
    await job.remove();
    await dataSource.query(
      `INSERT INTO billing.es_outbox (events_table, event_id, event_position, event_type, reactor, job_key) VALUES ($1, $2, $3, $4, $5, $6)`,
      ['invoice_events', paid.id, paid.position, paid.type, 'Remind', job.data.key],
    );
    expect(await es.pendingReactorJobs()).toBe(1);

    const worker = es.worker();
    try {
      await waitFor('the relayed job to run', async () => asyncRuns.length > 0, 15_000, 50);
      await waitForReactors(es, { timeout: 15_000 });
    } finally {
      await worker.close();
    }
    // The same job id the lost hand-over would have used, run once.
    expect(asyncRuns).toEqual([{ eventId: paid.id, jobId: job.id }]);
    expect(await count(dataSource, 'billing.es_outbox')).toBe(0);
  });

  test('billing.invoice_events refuses UPDATE, DELETE and TRUNCATE', async () => {
    for (const [operation, sql] of [
      ['UPDATE', `UPDATE billing.invoice_events SET metadata = '{"forged":true}'::jsonb`],
      ['DELETE', 'DELETE FROM billing.invoice_events'],
    ] as const) {
      const error = await rejectionOf(dataSource.query(sql));
      expect(error.message).toBe(`events are append-only: ${operation} on billing.invoice_events refused`);
    }
    const truncate = await rejectionOf(dataSource.query('TRUNCATE billing.invoice_events CASCADE'));
    expect(truncate.message).toBe('events are append-only: TRUNCATE on billing.invoice_events refused (test helpers: SET LOCAL typeorm_es.allow_truncate = on)');
    expect(await count(dataSource, 'billing.invoice_events')).toBeGreaterThan(0);
  });

  test("resetEventStore empties billing's tables and outbox; positions go on from billing's sequence", async () => {
    const before = await lastPosition(dataSource, 'billing.es_event_position');
    const identity = await identityIn(dataSource, 'billing');
    await dataSource.query(`INSERT INTO billing.es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('invoice_events', 1, 1, 'Invoice.Paid', 'Remind')`);

    await resetEventStore(es);

    for (const table of ['billing.invoice', 'billing.invoice_events', 'billing.es_outbox']) expect(await count(dataSource, table)).toBe(0);
    // The identity is the database's, not the test data's.
    expect(await identityIn(dataSource, 'billing')).toBe(identity);
    const issued = await dataSource.manager.save(InvoiceIssued.build({ customer: 'cy', amount: 1 }));
    expect(issued.aggregateId).toBe(1);
    expect(issued.position).toBe(before + 1);
  });
});

describe('eventSourcingMigration in a schema', () => {
  test("up creates the library's objects in billing, none in public; down drops them; migration:generate has nothing to write", async () => {
    const url = await freshDatabase('datasource_schema_migrations');
    // What `typeorm migration:generate` writes for the entities in billing: the tables.
    const probe = await initialized(url, 'billing');
    const generated = await probe.driver.createSchemaBuilder().log();
    await probe.destroy();
    expect(generated.upQueries.map((query) => query.query).filter((query) => query.startsWith('CREATE TABLE'))).toEqual(
      ['invoice', 'invoice_events', 'invoice_receipt'].map((table) => expect.stringContaining(`CREATE TABLE "billing"."${table}"`)),
    );
    const tables = class implements MigrationInterface {
      name = 'BillingTables1764000000000';
      async up(queryRunner: QueryRunner) {
        for (const query of generated.upQueries) await queryRunner.query(query.query, query.parameters);
      }
      async down(queryRunner: QueryRunner) {
        for (const query of [...generated.downQueries].reverse()) await queryRunner.query(query.query, query.parameters);
      }
    };
    Object.defineProperty(tables, 'name', { value: 'BillingTables1764000000000' });

    const dataSource = await initialized(url, 'billing', { migrations: [tables, eventSourcingMigration(1764000000001)] });
    try {
      expect((await dataSource.runMigrations()).map((migration) => migration.name)).toEqual(['BillingTables1764000000000', 'EventSourcingSchema1764000000001']);
      expect(await placesOf(dataSource)).toEqual(everyObjectIn('billing'));
      expect(await triggersOn(dataSource, 'billing.invoice_events')).toEqual(['es_append_only', 'es_no_truncate', 'es_position']);
      expect(await schemaDiff(dataSource)).toEqual([]);

      const es = await EventSourcing.attach(dataSource);
      try {
        const { issued, paid } = await issueAndPay(dataSource, 'dee');
        expect([issued.position, paid.position]).toEqual([1, 2]);
        expect(await lastPosition(dataSource, 'billing.es_event_position')).toBe(2);
      } finally {
        await es.close();
      }

      await dataSource.undoLastMigration();
      expect(await placesOf(dataSource)).toEqual({});
      expect(await triggersOn(dataSource, 'billing.invoice_events')).toEqual([]);
      // The tables are the generated migration's: still there, with their events.
      expect(await count(dataSource, 'billing.invoice_events')).toBe(2);
      // Without the position trigger an event is refused, not stored without its place in the order.
      const without = await EventSourcing.attach(dataSource);
      try {
        const error = await rejectionOf(dataSource.manager.save(InvoiceIssued.build({ customer: 'eve', amount: 3 })));
        expect(error.message).toBe('null value in column "position" of relation "invoice_events" violates not-null constraint');
        expect(await count(dataSource, 'billing.invoice')).toBe(1);
      } finally {
        await without.close();
      }
    } finally {
      await dataSource.destroy();
    }
  });
});

describe('a default DataSource and a billing one on the same database', () => {
  let url: string;
  let inPublic: DataSource;
  let inBilling: DataSource;
  let publicEs: EventSourcing;
  let billingEs: EventSourcing;

  beforeAll(async () => {
    url = await freshDatabase('datasource_schema_side_by_side');
    inPublic = await initialized(url, undefined, { synchronize: true });
    inBilling = await initialized(url, 'billing');
    await inBilling.synchronize();
    publicEs = await EventSourcing.attach(inPublic, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: queueName('side-public') } });
    billingEs = await EventSourcing.attach(inBilling, { dispatcher: dispatcher(), createSchema: true, queue: { connection: redisUrl, name: queueName('side-billing') } });
  });

  afterAll(async () => {
    await publicEs?.close();
    await billingEs?.close();
    await inPublic?.destroy();
    await inBilling?.destroy();
  });

  test('each has its own sequence, outbox, identity and functions, and migration:generate has nothing to write for either', async () => {
    expect(await placesOf(inPublic)).toEqual(everyObjectIn('billing', 'public'));
    expect(await triggersOn(inPublic, 'public.invoice_events')).toEqual(['es_append_only', 'es_no_truncate', 'es_position']);
    expect(await triggersOn(inPublic, 'billing.invoice_events')).toEqual(['es_append_only', 'es_no_truncate', 'es_position']);
    const [publicIdentity] = await inPublic.query('SELECT id::text AS id, secret FROM public.es_identity');
    const [billingIdentity] = await inPublic.query('SELECT id::text AS id, secret FROM billing.es_identity');
    expect(billingIdentity.id).not.toBe(publicIdentity.id);
    expect(billingIdentity.secret).not.toBe(publicIdentity.secret);
    expect(await schemaDiff(inPublic)).toEqual([]);
    expect(await schemaDiff(inBilling)).toEqual([]);
  });

  test('writes, reactors, the outbox and resetEventStore of one leave the other alone', async () => {
    const publicWrites = await issueAndPay(inPublic, 'pub');
    const billingWrites = await issueAndPay(inBilling, 'bil');
    // Invoice 1 in each schema, each numbered by its own sequence.
    expect([publicWrites.issued.aggregateId, billingWrites.issued.aggregateId]).toEqual([1, 1]);
    expect([publicWrites.issued.position, publicWrites.paid.position]).toEqual([1, 2]);
    expect([billingWrites.issued.position, billingWrites.paid.position]).toEqual([1, 2]);
    expect((await publicEs.history(Invoice, 1)).map((event) => event.data)).toEqual([{ customer: 'pub', amount: 120 }, { reference: 'ref-pub' }]);
    expect((await billingEs.history(Invoice, 1)).map((event) => event.data)).toEqual([{ customer: 'bil', amount: 120 }, { reference: 'ref-bil' }]);
    expect(await inPublic.query('SELECT reference FROM public.invoice_receipt')).toEqual([{ reference: 'ref-pub' }]);
    expect(await inPublic.query('SELECT reference FROM billing.invoice_receipt')).toEqual([{ reference: 'ref-bil' }]);

    // Each worker runs its own DataSource's job, found in its own schema.
    asyncRuns.length = 0;
    for (const es of [publicEs, billingEs]) {
      const worker = es.worker();
      try {
        await waitForReactors(es, { timeout: 15_000 });
      } finally {
        await worker.close();
      }
    }
    // Job ids start with the identity of the schema the event was written in.
    expect(asyncRuns.map((entry) => entry.jobId!.split('.').slice(0, 2).join('.')).sort()).toEqual(
      [`${await identityIn(inPublic, 'public')}.2`, `${await identityIn(inPublic, 'billing')}.2`].sort(),
    );

    // A row left in billing's outbox is billing's pending work only.
    await inBilling.query(`INSERT INTO billing.es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('invoice_events', 2, 2, 'Invoice.Paid', 'Remind')`);
    expect(await billingEs.pendingReactorJobs()).toBe(1);
    expect(await publicEs.pendingReactorJobs()).toBe(0);

    await resetEventStore(billingEs);
    expect(await count(inPublic, 'billing.invoice_events')).toBe(0);
    expect(await count(inPublic, 'billing.es_outbox')).toBe(0);
    expect(await count(inPublic, 'public.invoice_events')).toBe(2);
    expect(await publicEs.verify(Invoice)).toEqual([]);
  });

  test('an events table made by an earlier version (position defaulting to the sequence by name) loses that default when the schema statements run again', async () => {
    await inPublic.query(`ALTER TABLE public.invoice_events ALTER COLUMN "position" SET DEFAULT nextval((concat('es_event_position')))`);
    // TypeORM rebuilds the (tx_id, position) index around a change of the column.
    expect(await schemaDiff(inPublic)).toEqual([
      expect.stringMatching(/^DROP INDEX "public"\."IDX_\w+"$/),
      expect.stringMatching(/^ALTER TABLE "invoice_events" ALTER COLUMN "position" DROP DEFAULT/),
      expect.stringMatching(/^CREATE INDEX "IDX_\w+" ON "invoice_events" {2}\("tx_id", "position"\)/),
    ]);
    await publicEs.schema.create();
    expect(await schemaDiff(inPublic)).toEqual([]);
    const issued = await inPublic.manager.save(InvoiceIssued.build({ customer: 'old', amount: 2 }));
    expect(issued.position).toBe(await lastPosition(inPublic, 'public.es_event_position'));
  });

  test("the identities differ, so one's queue name is refused to the other (as for two databases)", async () => {
    const another = await initialized(url, undefined);
    try {
      const error = await rejectionOf(EventSourcing.attach(another, { queue: { connection: redisUrl, name: billingEs.queue.name } }));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toBe(
        `queue '${billingEs.queue.name}' is used by another database (identity ${await identityIn(another, 'billing')}, attached within the last 60 s): give each database a queue name of its own`,
      );
    } finally {
      await another.destroy();
    }
  });
});
