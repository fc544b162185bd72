import { Queue } from 'bullmq';
import type { DataSource, EntityManager, EntitySubscriberInterface, QueryRunner } from 'typeorm';
import {
  AggregateEvent,
  AggregateNotFoundError,
  AggregateRequiredError,
  ConcurrencyError,
  Dispatcher,
  EventAlreadyWrittenError,
  EventApplyError,
  EventSourcing,
  ImmutableEventError,
  InvalidEventDataError,
  type ReactorWorkerOptions,
} from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from './database';
import { rejectionOf } from './rejection';
import { expectLockedWrite, expectOneStatementWrite, inserts, type LoggedStatement, StatementLog, withListing, writeShape } from './statement-log';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
  SubscriptionRenamed,
  subscriptionEntities,
} from './subscription-model';

/**
 * The write-path lint: what every way of writing an event must guarantee, in the style of Rails
 * Event Store's event_repository_lint. A write path is a function that persists the event it is
 * given (`manager.save`, `es.append`, a transaction, a command, a trigger reactor...) and resolves
 * to the saved event.
 *
 * @example
 * ```ts
 * writePathLint('manager.save(event)', ({ manager, event }) => manager.save(event), { inTransactions: true });
 * ```
 */
export interface WriteContext<E extends AggregateEvent = AggregateEvent> {
  /** The unsaved event, built with `Event.build` (possibly with `{ expectedVersion }`). */
  event: E;
  dataSource: DataSource;
  es: EventSourcing;
  /**
   * The manager to write through: the DataSource's, or a transaction's (or a savepoint's) when
   * the lint runs the path inside one (see `inTransactions`).
   */
  manager: EntityManager;
}

export type WritePath = <E extends AggregateEvent>(ctx: WriteContext<E>) => Promise<E>;

/** What the lint hands to `attach`. */
export interface LintAttachContext {
  /** A dispatcher holding the lint's async reactors (when `outbox` is set); add yours to it. */
  dispatcher: Dispatcher;
}

export interface OutboxLintOptions {
  /**
   * Names of async reactors the lint registers on every Subscription event (in the dispatcher
   * given to `attach`) and whose runs it records. `attach` must configure a queue.
   */
  reactors: string[];
  /** Options of the worker the lint starts. */
  worker?: ReactorWorkerOptions;
}

export interface WritePathLintOptions {
  /** The database name (see `testDataSource`); by default derived from the suite name. */
  database?: string;
  /** How to attach; by default `EventSourcing.attach(dataSource, { dispatcher })`. */
  attach?: (dataSource: DataSource, lint: LintAttachContext) => Promise<EventSourcing>;
  /**
   * How many events one successful write commits, the event under test among them (a trigger
   * path commits its source event too). They must be committed together, in one COMMIT.
   * @defaultValue 1
   */
  committedPerWrite?: number;
  /**
   * The error the write path's own error is carried by, e.g. a trigger reactor's `ReactorError`
   * whose `cause` is the error of the event under test. Conflicts (`ConcurrencyError`) are checked
   * without it: every path must surface them as they are, so that callers can retry.
   * @defaultValue the error itself
   */
  unwrap?: (error: any) => any;
  /**
   * The path writes through `ctx.manager`: the lint also runs it inside a user transaction and
   * in a savepoint that rolls back.
   */
  inTransactions?: boolean;
  /** The path runs with async reactors and a queue: the lint checks the outbox and the jobs. */
  outbox?: OutboxLintOptions;
  /**
   * Every Subscription event gets a trigger reactor that records, through `ctx.manager`, its event
   * and transaction: the lint checks each committed event has its record, in its transaction,
   * and that failed or rolled-back writes left none.
   */
  trigger?: boolean;
  /**
   * How a write of an event on an instance TypeORM loaded (or the library last wrote) must reach
   * the database, checked on the statements the DataSource logged:
   * - `'fast'`: one statement (aggregate row, event, outbox rows), no transaction;
   * - `'conditional'`: a transaction whose only aggregate statement is an UPDATE ... RETURNING
   *   (no SELECT ... FOR UPDATE), as manager.save(event) does;
   * - `'locked'`: a transaction with SELECT ... FOR UPDATE, and no one-statement attempt;
   * - `'transaction'`: one transaction, committed once, holding the event (the one statement
   *   may be in it, e.g. with trigger reactors).
   * Unset: not checked.
   */
  expectedPath?: ExpectedPath;
}

export type ExpectedPath = 'fast' | 'conditional' | 'locked' | 'transaction';

const tables = { aggregate: 'subscription', events: 'subscription_events' };

/** Checks the statements of one write of a known instance against the path it must take. */
function expectPath(path: ExpectedPath | undefined, statements: LoggedStatement[], outbox: boolean): void {
  if (!path) return;
  if (path === 'fast') {
    expectOneStatementWrite(statements, tables, { outbox });
    return;
  }
  if (path === 'locked') {
    const shape = expectLockedWrite(statements, tables);
    withListing(shape, () => expect(shape.oneStatementWrites).toEqual([]));
    return;
  }
  const shape = writeShape(statements, tables);
  withListing(shape, () => {
    expect([shape.transactions.length, shape.commits.length, shape.rollbacks.length]).toEqual([1, 1, 0]);
    const runner = shape.transactions[0].runner;
    expect(shape.eventInserts.filter((statement) => statement.runner === runner).length).toBeGreaterThanOrEqual(1);
    if (path === 'conditional') {
      expect(shape.lockedReads).toEqual([]);
      expect(shape.aggregateStatements.map((statement) => /^\s*UPDATE\b[^]*\bRETURNING\b/i.test(statement.sql))).toEqual([true]);
    }
  });
}

/** A row of the subscription table, as PostgreSQL returns it. */
export async function subscriptionRow(dataSource: DataSource, id: unknown): Promise<Record<string, any> | undefined> {
  const rows = await dataSource.query('SELECT * FROM subscription WHERE id = $1', [id]);
  return rows[0];
}

/** The event rows of one subscription, in version order, as PostgreSQL returns them. */
export async function eventRows(dataSource: DataSource, id: unknown): Promise<Record<string, any>[]> {
  return dataSource.query('SELECT * FROM subscription_events WHERE subscription_id = $1 ORDER BY version', [id]);
}

export async function countEvents(dataSource: DataSource): Promise<number> {
  const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription_events');
  return count;
}

async function countSubscriptions(dataSource: DataSource): Promise<number> {
  const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
  return count;
}

/** Every column value of an aggregate instance (deep copies), to compare before and after. */
export function columnsOf(subscription: Subscription): Record<string, unknown> {
  const { events: _events, ...columns } = subscription as Subscription & Record<string, unknown>;
  return structuredClone(columns);
}

/** The fields a write fills in on an event (copies), to compare before and after. */
export function writtenFieldsOf(event: AggregateEvent): Record<string, unknown> {
  const { id, aggregateId, version, createdAt, metadata, position, txId } = event;
  return structuredClone({ id, aggregateId, version, createdAt, metadata, position, txId });
}

/** The subscription row as stored, through TypeORM. */
export async function loadSubscription(dataSource: DataSource, id: unknown): Promise<Subscription> {
  return dataSource.manager.findOneByOrFail(Subscription, { id: id as number });
}

/** A new subscription written through `es.append`, loaded by TypeORM: its stored state is known. */
export async function appendedSubscription(es: EventSourcing, dataSource: DataSource, userId: number): Promise<Subscription> {
  const { aggregateId } = await es.append(SubscriptionCreated.build({ userId }));
  return loadSubscription(dataSource, aggregateId);
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '')
    .slice(0, 40);
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Registers `describe(name)` with the guarantees of a write path, against a database of its own
 * holding the Subscription model of tests/support/subscription-model.ts.
 */
export function writePathLint(name: string, write: WritePath, options: WritePathLintOptions = {}): void {
  const perWrite = options.committedPerWrite ?? 1;
  const unwrap = options.unwrap ?? ((error: unknown) => error);
  const outbox = options.outbox;

  describe(`write path lint: ${name}`, () => {
    let dataSource: DataSource;
    let es: EventSourcing;
    /** Events per COMMIT since the test (or its createSubscription) started. */
    const committed: AggregateEvent[][] = [];
    /** Every event committed during the current test, createSubscription's included. */
    const committedInTest: AggregateEvent[] = [];
    /** Runs of the lint's async reactors during the current test. */
    const runs: { reactor: string; eventId: number }[] = [];
    /** Set by a test to look into a transaction just before its COMMIT. */
    let beforeCommit: ((queryRunner: QueryRunner) => Promise<void>) | undefined;
    let outboxLogMark = 0;
    let triggerLogMark = 0;
    /** Every statement the DataSource sent during the current test. */
    const statementLog = new StatementLog();

    const run = <E extends AggregateEvent>(event: E, manager: EntityManager = dataSource.manager): Promise<E> =>
      write({ event, dataSource, es, manager });
    /** The error of the event under test when its write fails (see `unwrap`). */
    const failureOf = async (promise: Promise<unknown>) => unwrap(await rejectionOf(promise));

    /** A subscription created through the plain path, loaded fresh. */
    async function createSubscription(userId = 1): Promise<Subscription> {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
      const subscription = await loadSubscription(dataSource, created.aggregateId);
      committed.length = 0; // only what the test itself writes
      return subscription;
    }

    /** Outbox rows committed since the test started, as (event id, reactor, transaction id). */
    async function outboxLog(): Promise<{ eventId: number; reactor: string; tx: number }[]> {
      return dataSource.query(
        `SELECT event_id::float8 AS "eventId", reactor, tx::float8 AS tx FROM lint_outbox_log WHERE seq > $1 ORDER BY seq`,
        [outboxLogMark],
      );
    }

    async function outboxRowCount(): Promise<number> {
      const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM es_outbox`);
      return count;
    }

    beforeAll(async () => {
      dataSource = await testDataSource(options.database ?? `lint_${slug(name)}`, subscriptionEntities, { logger: statementLog, logging: true });
      const dispatcher = new Dispatcher();
      for (const reactor of outbox?.reactors ?? []) {
        dispatcher.on(SubscriptionEvent, { async: (event, ctx) => void runs.push({ reactor: ctx.reactor, eventId: event.id }), name: reactor });
      }
      if (options.trigger) {
        await dataSource.query(`CREATE TABLE lint_trigger_log (seq bigserial PRIMARY KEY, event_id bigint NOT NULL, tx bigint NOT NULL)`);
        dispatcher.on(SubscriptionEvent, {
          trigger: async (event, ctx) => {
            await ctx.manager.query(`INSERT INTO lint_trigger_log (event_id, tx) VALUES ($1, txid_current())`, [event.id]);
          },
          name: 'LintTrigger',
        });
      }
      const attach = options.attach ?? ((source: DataSource, lint: LintAttachContext) => EventSourcing.attach(source, { dispatcher: lint.dispatcher }));
      es = await attach(dataSource, { dispatcher });
      es.afterCommit((events) => {
        committed.push(events);
        committedInTest.push(...events);
      });
      dataSource.subscribers.push({
        beforeTransactionCommit: (event) =>
          beforeCommit && (event.queryRunner as unknown as { transactionDepth: number }).transactionDepth === 1
            ? beforeCommit(event.queryRunner)
            : undefined,
      } as EntitySubscriberInterface);
      // A real INSERT failure after a successful apply: the events table refuses this stripe key.
      await dataSource.query(
        `ALTER TABLE subscription_events ADD CONSTRAINT lint_no_explode CHECK (data->>'stripeKey' IS DISTINCT FROM 'explode')`,
      );
      // An INSERT failure that goes away: notes and user ids listed in lint_refused are refused
      // while they are listed, so a test can fail a write and then retry the same event.
      await dataSource.query(`
        CREATE TABLE lint_refused (token text PRIMARY KEY);
        CREATE FUNCTION lint_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM lint_refused WHERE token IN (NEW.data->>'note', NEW.data->>'userId')) THEN
            RAISE EXCEPTION 'lint_refused: this event is refused for now';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER lint_refuse BEFORE INSERT ON subscription_events FOR EACH ROW EXECUTE FUNCTION lint_refuse();
      `);
      if (outbox) {
        // Outbox rows are deleted as soon as their jobs are queued; this log keeps, for every
        // outbox row that ever committed, its event and the transaction that wrote it.
        await dataSource.query(`
          CREATE TABLE lint_outbox_log (seq bigserial PRIMARY KEY, event_id bigint NOT NULL, reactor text NOT NULL, tx bigint NOT NULL);
          CREATE FUNCTION lint_log_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            INSERT INTO lint_outbox_log (event_id, reactor, tx) VALUES (NEW.event_id, NEW.reactor, txid_current());
            RETURN NULL;
          END $$;
          CREATE TRIGGER lint_log_outbox AFTER INSERT ON es_outbox FOR EACH ROW EXECUTE FUNCTION lint_log_outbox();
        `);
        es.worker(outbox.worker ?? {});
      }
    });

    afterAll(async () => {
      const queue = outbox && es ? { name: es.queue.name, opts: es.queue.opts } : undefined;
      await es?.close();
      await dataSource?.destroy();
      if (queue) {
        const leftover = new Queue(queue.name, { connection: queue.opts.connection, prefix: queue.opts.prefix });
        try {
          await leftover.obliterate({ force: true });
        } finally {
          await leftover.close();
        }
      }
    });

    beforeEach(async () => {
      committed.length = 0;
      committedInTest.length = 0;
      runs.length = 0;
      beforeCommit = undefined;
      statementLog.statements.length = 0;
      if (options.trigger) {
        const [{ mark }] = await dataSource.query(`SELECT coalesce(max(seq), 0)::float8 AS mark FROM lint_trigger_log`);
        triggerLogMark = mark;
      }
      if (outbox) {
        const [{ mark }] = await dataSource.query(`SELECT coalesce(max(seq), 0)::float8 AS mark FROM lint_outbox_log`);
        outboxLogMark = mark;
      }
    });

    if (options.trigger) {
      // Whatever a test did: every event it committed had its trigger run once, in its own
      // transaction; the triggers of writes that failed or rolled back left nothing.
      afterEach(async () => {
        const logged: { eventId: number; tx: number }[] = await dataSource.query(
          `SELECT event_id::float8 AS "eventId", tx::float8 AS tx FROM lint_trigger_log WHERE seq > $1 ORDER BY event_id`,
          [triggerLogMark],
        );
        expect(logged).toEqual(committedInTest.map((event) => ({ eventId: event.id, tx: event.txId })).sort((a, b) => a.eventId - b.eventId));
      });
    }

    if (outbox) {
      // Whatever a test did: every event it committed got one outbox row per reactor, written in
      // its own transaction; nothing else got any; each reactor ran once per committed event; and
      // nothing is left in the outbox.
      afterEach(async () => {
        beforeCommit = undefined;
        await waitForReactors(es, { timeout: 20_000 });
        const expected = committedInTest
          .flatMap((event) => outbox.reactors.map((reactor) => ({ eventId: event.id, reactor, tx: event.txId })))
          .sort((a, b) => a.eventId - b.eventId || byKey(a.reactor, b.reactor));
        const logged = (await outboxLog()).sort((a, b) => a.eventId - b.eventId || byKey(a.reactor, b.reactor));
        expect(logged).toEqual(expected);
        expect([...runs].sort((a, b) => a.eventId - b.eventId || byKey(a.reactor, b.reactor))).toEqual(
          expected.map(({ eventId, reactor }) => ({ eventId, reactor })),
        );
        expect(await outboxRowCount()).toBe(0);
      });
    }

    test('an event built without an aggregate creates it at version 1 and returns the saved event', async () => {
      const event = await run(SubscriptionCreated.build({ userId: 41 }));

      expect(event).toBeInstanceOf(SubscriptionCreated);
      expect(typeof event.id).toBe('number');
      expect(typeof event.aggregateId).toBe('number');
      expect(typeof event.position).toBe('number');
      expect(typeof event.txId).toBe('number');
      expect(event.version).toBe(1);
      expect(event.createdAt).toBeInstanceOf(Date);

      const row = await subscriptionRow(dataSource, event.aggregateId);
      expect(row).toMatchObject({ id: event.aggregateId, userId: 41, status: 'pending', version: 1 });
      const [stored] = await eventRows(dataSource, event.aggregateId);
      expect(stored).toMatchObject({
        id: String(event.id),
        subscription_id: event.aggregateId,
        version: 1,
        type: 'Subscription.Created',
        schema_version: 1,
        data: { userId: 41 },
        metadata: event.metadata,
        position: String(event.position),
        tx_id: String(event.txId),
      });
      expect(stored.created_at.getTime()).toBe(event.createdAt.getTime());
    });

    test('a later event is applied to the row and to the caller instance, and stored as written', async () => {
      const subscription = await createSubscription(42);
      const { value: event, statements } = await statementLog.during(() =>
        run(SubscriptionActivated.build({ subscription, stripeKey: 'sub_lint', metadata: { notificationId: 7, source: 'lint' } })),
      );
      expectPath(options.expectedPath, statements, Boolean(outbox));

      expect(event.version).toBe(2);
      expect(event.aggregateId).toBe(subscription.id);
      expect(subscription.status).toBe('active');
      expect(subscription.stripeKey).toBe('sub_lint');
      expect(subscription.version).toBe(2);
      expect(subscription.activatedAt?.getTime()).toBe(event.createdAt.getTime());

      const row = await subscriptionRow(dataSource, subscription.id);
      expect(row).toMatchObject({ status: 'active', stripeKey: 'sub_lint', version: 2, userId: 42 });
      expect(row!.activatedAt.getTime()).toBe(event.createdAt.getTime());

      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((r) => [r.version, r.type])).toEqual([
        [1, 'Subscription.Created'],
        [2, 'Subscription.Activated'],
      ]);
      expect(rows[1].data).toEqual({ stripeKey: 'sub_lint' });
      // Metadata given to build is stored as given (a path may add to it, never override it).
      expect(rows[1].metadata).toMatchObject({ notificationId: 7, source: 'lint' });
      expect(rows[1].metadata).toEqual(event.metadata);
      expect(rows[1].created_at.getTime()).toBe(event.createdAt.getTime());
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('a row from before events gets its baseline first, in the same transaction: versions 1 and 2, row equals replay', async () => {
      const [{ id }] = await dataSource.query(
        `INSERT INTO subscription ("userId", status, "stripeKey", notes) VALUES (43, 'active', 'sk_crud', '["from crud"]') RETURNING id`,
      );
      const legacy = await loadSubscription(dataSource, id);
      const event = await run(SubscriptionNoteAdded.build({ subscription: legacy, note: 'first event' }));
      expect(event.version).toBe(2);
      expect(legacy).toMatchObject({ status: 'active', stripeKey: 'sk_crud', notes: ['from crud', 'first event'], version: 2 });
      const rows = await eventRows(dataSource, id);
      expect(rows.map((row) => [row.version, row.type, row.tx_id])).toEqual([
        [1, 'Subscription.Imported', rows[1].tx_id],
        [2, 'Subscription.NoteAdded', String(event.txId)],
      ]);
      expect(await es.verify(Subscription, { id })).toEqual([]);
    });

    test('a failed first write onto a row from before events leaves no baseline behind', async () => {
      const [{ id }] = await dataSource.query(`INSERT INTO subscription ("userId") VALUES (44) RETURNING id`);
      const legacy = await loadSubscription(dataSource, id);
      await expect(failureOf(run(SubscriptionActivated.build({ subscription: legacy, stripeKey: 'explode' })))).resolves.toBeInstanceOf(Error);
      expect(legacy.version).toBe(0);
      expect(await eventRows(dataSource, id)).toEqual([]);
      expect(await subscriptionRow(dataSource, id)).toMatchObject({ userId: 44, status: 'pending', version: 0 });
    });

    test('an unsaved aggregate instance passed to a creating event is created and receives its id and state', async () => {
      const subscription = new Subscription();
      const event = await run(SubscriptionCreated.build({ subscription, userId: 43 }));

      expect(typeof subscription.id).toBe('number');
      expect(event.aggregateId).toBe(subscription.id);
      expect(event.version).toBe(1);
      expect(subscription).toMatchObject({ version: 1, status: 'pending', notes: [], userId: 43 });
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 1, userId: 43 });
    });

    test('an event type that does not create its aggregate, without one: AggregateRequiredError, nothing written', async () => {
      const eventsBefore = await countEvents(dataSource);
      const aggregatesBefore = await countSubscriptions(dataSource);
      const unsaved = new Subscription();

      for (const event of [SubscriptionNoteAdded.build({ note: 'orphan' }), SubscriptionNoteAdded.build({ subscription: unsaved, note: 'orphan' })]) {
        const built = writtenFieldsOf(event);
        const error = await failureOf(run(event));
        expect(error).toBeInstanceOf(AggregateRequiredError);
        expect(error.message).toBe(
          'Subscription.NoteAdded needs an existing Subscription: build it with { subscription } (only event types declared @EventType(name, { creates: true }) create their aggregate)',
        );
        expect(event.id).toBeUndefined();
        expect(writtenFieldsOf(event)).toEqual(built);
      }
      expect(unsaved.id).toBeUndefined();
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await countSubscriptions(dataSource)).toBe(aggregatesBefore);
      expect(committed).toEqual([]);
    });

    test('a stale caller instance: the event is applied to the locked row, and the caller catches up', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'by someone else' }));

      const event = await run(SubscriptionNoteAdded.build({ subscription: stale, note: 'mine' }));

      expect(event.version).toBe(3);
      expect(stale.version).toBe(3);
      expect(stale.notes).toEqual(['by someone else', 'mine']);
      expect(await subscriptionRow(dataSource, stale.id)).toMatchObject({ version: 3, notes: ['by someone else', 'mine'] });
      expect(await es.verify(Subscription, { id: stale.id })).toEqual([]);
    });

    /**
     * Runs a write that must fail and checks what every failure leaves behind: no event row, no
     * new aggregate, the aggregate row, the caller's instance and the event object as they were,
     * nothing committed. Resolves to the failure as `unwrap` gives it.
     */
    async function expectFailedWrite(subscription: Subscription, event: AggregateEvent, raw = false): Promise<any> {
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);
      const built = writtenFieldsOf(event);
      const eventsBefore = await countEvents(dataSource);
      const aggregatesBefore = await countSubscriptions(dataSource);

      const rejection = await rejectionOf(run(event));

      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await countSubscriptions(dataSource)).toBe(aggregatesBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(writtenFieldsOf(event)).toEqual(built);
      expect(event.id).toBeUndefined();
      expect(event.version).toBeUndefined();
      expect(committed).toEqual([]);
      return raw ? rejection : unwrap(rejection);
    }

    test('apply throws: EventApplyError, nothing written, row, caller instance and event unchanged', async () => {
      const subscription = await createSubscription();
      await run(SubscriptionCancelled.build({ subscription, reason: 'first' }));
      committed.length = 0;

      const error = await expectFailedWrite(subscription, SubscriptionCancelled.build({ subscription, reason: 'again' }));

      expect(error).toBeInstanceOf(EventApplyError);
      expect(error.message).toContain('Subscription.Cancelled');
      expect(error.message).toContain(`Subscription ${subscription.id}`);
      expect(error.message).toContain('already cancelled');
      expect(error.eventType).toBe('Subscription.Cancelled');
      expect(error.aggregateId).toBe(subscription.id);
    });

    test('the INSERT fails after apply succeeded: nothing written, row unchanged, caller instance and event restored', async () => {
      const subscription = await createSubscription();

      const error = await expectFailedWrite(subscription, SubscriptionRenamed.build({ subscription, stripeKey: 'explode' }));

      expect(error.message).toContain('lint_no_explode');
      expect(subscription.stripeKey).toBeNull();
    });

    test('a failed write leaves the event as built: the same instance is written once the cause is gone', async () => {
      const subscription = await createSubscription();
      const note = SubscriptionNoteAdded.build({ subscription, note: `refused-${subscription.id}` });
      const unsaved = new Subscription();
      const created = SubscriptionCreated.build({ subscription: unsaved, userId: 1_000_000 + subscription.id });
      await dataSource.query(`INSERT INTO lint_refused (token) VALUES ($1), ($2)`, [note.note, String(created.userId)]);

      expect((await expectFailedWrite(subscription, note)).message).toContain('lint_refused');
      expect((await expectFailedWrite(subscription, created)).message).toContain('lint_refused');
      expect(unsaved.id).toBeUndefined();
      expect(unsaved.version).toBeUndefined();

      await dataSource.query(`DELETE FROM lint_refused WHERE token IN ($1, $2)`, [note.note, String(created.userId)]);
      expect(await run(note)).toBe(note);
      expect(await run(created)).toBe(created);

      expect(note).toMatchObject({ version: 2, aggregateId: subscription.id });
      expect(subscription).toMatchObject({ version: 2, notes: [note.note] });
      expect((await eventRows(dataSource, subscription.id)).map((row) => [row.version, row.id])).toEqual([
        [1, expect.any(String)],
        [2, String(note.id)],
      ]);
      expect(typeof unsaved.id).toBe('number');
      expect(created).toMatchObject({ version: 1, aggregateId: unsaved.id });
      expect(unsaved).toMatchObject({ version: 1, userId: created.userId });
      expect((await eventRows(dataSource, unsaved.id)).map((row) => row.id)).toEqual([String(created.id)]);
    });

    test('invalid data: InvalidEventDataError naming type and attribute, nothing written, caller and event unchanged', async () => {
      const subscription = await createSubscription();

      const error = await expectFailedWrite(
        subscription,
        SubscriptionNoteAdded.build({ subscription, note: 'ok', metadata: { score: Number.NaN } }),
      );

      expect(error).toBeInstanceOf(InvalidEventDataError);
      expect(error.message).toContain('Subscription.NoteAdded');
      expect(error.message).toContain('metadata.score');
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 1, notes: [] });
    });

    test('an event for an aggregate that does not exist: AggregateNotFoundError, nothing written', async () => {
      const subscription = await createSubscription();
      const ghost = Object.assign(new Subscription(), { id: 987654 });

      const error = await expectFailedWrite(subscription, SubscriptionNoteAdded.build({ subscription: ghost, note: 'boo' }));

      expect(error).toBeInstanceOf(AggregateNotFoundError);
      expect(error.message).toBe('Subscription 987654 does not exist');
      expect(ghost).toEqual(Object.assign(new Subscription(), { id: 987654 }));
    });

    test('an expected version from build: a mismatch raises ConcurrencyError as is and writes nothing; a match writes', async () => {
      const subscription = await createSubscription();
      const stale = await loadSubscription(dataSource, subscription.id);
      await run(SubscriptionNoteAdded.build({ subscription, note: 'one' }));
      committed.length = 0;

      // Not unwrapped: a conflict reaches the caller as a ConcurrencyError on every path, so
      // that callers and commands can reload and retry.
      const error = await expectFailedWrite(
        stale,
        SubscriptionNoteAdded.build({ subscription: stale, note: 'two' }, { expectedVersion: stale.version }),
        true,
      );

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({
        aggregateType: 'Subscription',
        aggregateId: subscription.id,
        expectedVersion: 1,
        actualVersion: 2,
        retryable: false,
      });
      expect(error.message).toBe(`Subscription ${subscription.id}: expected version 1, but it is at version 2`);
      expect((await eventRows(dataSource, subscription.id)).map((r) => r.version)).toEqual([1, 2]);
      expect(stale.version).toBe(1);
      expect(stale.notes).toEqual([]);

      const event = await run(SubscriptionNoteAdded.build({ subscription, note: 'two' }, { expectedVersion: 2 }));
      expect(event.version).toBe(3);
      expect(subscription.notes).toEqual(['one', 'two']);
    });

    test('one event instance written twice, at once or one after the other, is written once', async () => {
      const subscription = await createSubscription();
      const event = SubscriptionNoteAdded.build({ subscription, note: 'once' });
      /**
       * A second write of a written instance is refused; or, where it reaches TypeORM after the
       * first committed (manager.save of an unchanged saved entity), it is a no-op returning the
       * event. Never a second row.
       */
      const expectRefusedOrNoop = (outcome: PromiseSettledResult<AggregateEvent>) => {
        if (outcome.status === 'fulfilled') return expect(outcome.value).toBe(event);
        const error = unwrap(outcome.reason);
        expect([EventAlreadyWrittenError, ImmutableEventError].some((type) => error instanceof type)).toBe(true);
        if (error instanceof EventAlreadyWrittenError) {
          expect(error.message).toMatch(/^Subscription\.NoteAdded: this event instance is already (being written|written); an event is written once, build a new one$/);
        }
      };

      const [first, second] = await Promise.allSettled([run(event), run(event)]);

      expect([first, second].filter((outcome) => outcome.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
      expectRefusedOrNoop(first);
      expectRefusedOrNoop(second);
      expect(event).toMatchObject({ version: 2, aggregateId: subscription.id });
      const fields = writtenFieldsOf(event);

      const [again] = await Promise.allSettled([run(event)]);

      expectRefusedOrNoop(again);
      expect(writtenFieldsOf(event)).toEqual(fields);
      expect((await eventRows(dataSource, subscription.id)).map((row) => [row.version, row.id])).toEqual([
        [1, expect.any(String)],
        [2, String(event.id)],
      ]);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2, notes: ['once'] });
      expect(subscription).toMatchObject({ version: 2, notes: ['once'] });
      expect(committed.flat().filter((committedEvent) => committedEvent === event)).toHaveLength(1);
    });

    test('concurrent writes on one aggregate are serialised: contiguous versions, row equals replay', async () => {
      const subscription = await createSubscription();
      const writers = await Promise.all(Array.from({ length: 12 }, () => loadSubscription(dataSource, subscription.id)));

      const events = await Promise.all(
        writers.map((stale, index) => run(SubscriptionNoteAdded.build({ subscription: stale, note: `n${index}` }))),
      );

      expect(events.map((e) => e.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((r) => r.version)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
      const row = await subscriptionRow(dataSource, subscription.id);
      expect(row!.version).toBe(13);
      expect([...row!.notes].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `n${i}`).sort());
      // The notes are in version order.
      expect(row!.notes).toEqual(rows.slice(1).map((r) => r.data.note));
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('after-commit listeners get the written event once, after COMMIT, with the events committed with it', async () => {
      const subscription = await createSubscription();
      committed.length = 0;
      const seenFromOutside: Promise<unknown[]>[] = [];
      const off = es.afterCommit((events) => {
        // Another connection must already see the rows: the listener runs after COMMIT.
        seenFromOutside.push(dataSource.query('SELECT id FROM subscription_events WHERE id = ANY($1::bigint[])', [events.map((e) => e.id)]));
      });
      try {
        const event = await run(SubscriptionNoteAdded.build({ subscription, note: 'listened' }));
        expect(committed).toHaveLength(1);
        expect(committed[0]).toHaveLength(perWrite);
        expect(committed[0].filter((e) => e === event)).toHaveLength(1);
        expect(event).toMatchObject({ type: 'Subscription.NoteAdded', version: 2 });
        // One COMMIT: every event of the write has its transaction id.
        expect(committed[0].map((e) => e.txId)).toEqual(committed[0].map(() => event.txId));
        expect(seenFromOutside).toHaveLength(1);
        expect(await seenFromOutside[0]).toHaveLength(perWrite);
      } finally {
        off();
      }
    });

    test('positions grow across writes and each write has its own transaction id', async () => {
      const subscription = await createSubscription();
      const first = await run(SubscriptionNoteAdded.build({ subscription, note: 'a' }));
      // Written by the library last: the instance's stored state is known.
      const { value: second, statements } = await statementLog.during(() => run(SubscriptionNoteAdded.build({ subscription, note: 'b' })));
      expectPath(options.expectedPath, statements, Boolean(outbox));

      expect(second.position).toBeGreaterThan(first.position);
      expect(second.txId).not.toBe(first.txId);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.slice(1).map((r) => [Number(r.position), Number(r.tx_id)])).toEqual([
        [first.position, first.txId],
        [second.position, second.txId],
      ]);
    });

    test('history returns exactly what was written, createdAt to the millisecond', async () => {
      const subscription = await createSubscription();
      const trialEndsAt = new Date('2031-02-03T04:05:06.789Z');
      const event = await run(SubscriptionActivated.build({ subscription, stripeKey: 'sub_hist', trialEndsAt }));

      const [, loaded] = await es.history(Subscription, subscription.id);
      expect(loaded).toBeInstanceOf(SubscriptionActivated);
      expect(loaded).toMatchObject({ id: event.id, version: 2, stripeKey: 'sub_hist', aggregateId: subscription.id });
      expect((loaded as SubscriptionActivated).trialEndsAt).toEqual(trialEndsAt);
      expect(loaded.createdAt.getTime()).toBe(event.createdAt.getTime());
    });

    if (options.inTransactions) {
      test('in a user transaction: committed with it; a savepoint that rolls back undoes its write, instance and event included', async () => {
        const subscription = await createSubscription();
        const inner = SubscriptionNoteAdded.build({ subscription, note: 'inner' });
        const built = writtenFieldsOf(inner);
        let outer!: SubscriptionNoteAdded;

        await dataSource.transaction(async (manager) => {
          outer = await run(SubscriptionNoteAdded.build({ subscription, note: 'outer' }), manager);
          const before = columnsOf(subscription);
          const undone = await rejectionOf(
            manager.transaction(async (savepoint) => {
              await run(inner, savepoint);
              expect(subscription).toMatchObject({ version: 3, notes: ['outer', 'inner'] });
              throw new Error('undo the savepoint');
            }),
          );
          expect(undone.message).toBe('undo the savepoint');
          expect(writtenFieldsOf(inner)).toEqual(built);
          expect(columnsOf(subscription)).toEqual(before);
          // Inside: the outer write; outside: nothing yet.
          const [{ count }] = await manager.query(`SELECT count(*)::int AS count FROM subscription_events WHERE subscription_id = $1`, [subscription.id]);
          expect(count).toBe(2);
          expect(await eventRows(dataSource, subscription.id)).toHaveLength(1);
          expect(committed).toEqual([]);
        });

        expect(committed).toHaveLength(1);
        expect(committed[0]).toHaveLength(perWrite);
        expect(committed[0]).toContain(outer);
        expect(committed[0]).not.toContain(inner);
        expect(subscription).toMatchObject({ version: 2, notes: ['outer'] });
        expect((await eventRows(dataSource, subscription.id)).map((row) => [row.version, row.data.note ?? null])).toEqual([
          [1, null],
          [2, 'outer'],
        ]);
        // The undone event was never written: it can be written now.
        const rewritten = await run(inner);
        expect(rewritten).toBe(inner);
        expect(inner.version).toBe(3);
        expect(subscription).toMatchObject({ version: 3, notes: ['outer', 'inner'] });
        expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
      });
    }

    if (outbox) {
      test('outbox: one row per async reactor, written with the event (one statement, or one transaction seen by others only after COMMIT)', async () => {
        const subscription = await createSubscription();
        const seen: { inside: { eventId: number; reactor: string }[]; outsideOutbox: number; outsideEvents: number }[] = [];
        beforeCommit = async (queryRunner) => {
          const inside: { eventId: number; reactor: string }[] = await queryRunner.query(
            `SELECT o.event_id::float8 AS "eventId", o.reactor FROM es_outbox o
             JOIN subscription_events e ON o.events_table = 'subscription_events' AND e.id = o.event_id
             WHERE e.tx_id = txid_current() ORDER BY o.event_id, o.reactor`,
          );
          // Other transactions commit meanwhile (the relay's, claiming nothing): only this write's count.
          if (inside.length === 0) return;
          const ids = inside.map((row) => row.eventId);
          const [{ count: outsideOutbox }] = await dataSource.query(`SELECT count(*)::int AS count FROM es_outbox WHERE event_id = ANY($1::bigint[])`, [ids]);
          const [{ count: outsideEvents }] = await dataSource.query(`SELECT count(*)::int AS count FROM subscription_events WHERE id = ANY($1::bigint[])`, [ids]);
          seen.push({ inside, outsideOutbox, outsideEvents });
        };

        const { value: event, statements } = await statementLog.during(() => run(SubscriptionNoteAdded.build({ subscription, note: 'outboxed' })));
        beforeCommit = undefined;

        const written = committed[0];
        expect(written).toContain(event);
        const rowsOf = (events: AggregateEvent[]) =>
          events
            .flatMap((e) => outbox.reactors.map((reactor) => ({ eventId: e.id, reactor })))
            .sort((a, b) => a.eventId - b.eventId || byKey(a.reactor, b.reactor));
        if (writeShape(statements, tables).transactions.length === 0) {
          // Autocommit: the statement inserting the event inserted its outbox rows, so no one
          // ever sees one without the other; there is no COMMIT to look before.
          const statement = expectOneStatementWrite(statements, tables, { outbox: true });
          expect(inserts(statement.sql, 'es_outbox')).toBe(true);
          expect(seen).toEqual([]);
        } else {
          expect(seen).toEqual([{ inside: rowsOf(written), outsideOutbox: 0, outsideEvents: 0 }]);
        }
        expect(await outboxLog()).toEqual(
          expect.arrayContaining(rowsOf([event]).map((row) => ({ ...row, tx: event.txId }))),
        );
        await waitForReactors(es, { timeout: 20_000 });
        expect(runs.filter((entry) => entry.eventId === event.id).map((entry) => entry.reactor).sort(byKey)).toEqual([...outbox.reactors].sort(byKey));
        expect(await outboxRowCount()).toBe(0);
      });

      test('outbox: writes that fail leave no row and run no reactor (apply throws, INSERT fails, expected version mismatch)', async () => {
        const subscription = await createSubscription();
        await run(SubscriptionCancelled.build({ subscription, reason: 'first' }));
        await waitForReactors(es, { timeout: 20_000 });
        const logged = (await outboxLog()).length;
        const ran = runs.length;
        committed.length = 0;

        await expectFailedWrite(subscription, SubscriptionCancelled.build({ subscription, reason: 'again' }));
        await expectFailedWrite(subscription, SubscriptionRenamed.build({ subscription, stripeKey: 'explode' }));
        await expectFailedWrite(subscription, SubscriptionNoteAdded.build({ subscription, note: 'late' }, { expectedVersion: 1 }), true);
        await waitForReactors(es, { timeout: 20_000 });

        expect((await outboxLog()).length).toBe(logged);
        expect(runs).toHaveLength(ran);
        expect(await outboxRowCount()).toBe(0);
      });

      if (options.inTransactions) {
        test('outbox: a savepoint that rolls back leaves no row; the rows of the outer transaction commit with it', async () => {
          const subscription = await createSubscription();
          await waitForReactors(es, { timeout: 20_000 });
          const logged = (await outboxLog()).length;
          const inner = SubscriptionNoteAdded.build({ subscription, note: 'inner' });
          let outer!: SubscriptionNoteAdded;
          let outboxInside = -1;

          await dataSource.transaction(async (manager) => {
            outer = await run(SubscriptionNoteAdded.build({ subscription, note: 'outer' }), manager);
            await rejectionOf(
              manager.transaction(async (savepoint) => {
                await run(inner, savepoint);
                throw new Error('undo the savepoint');
              }),
            );
            [{ count: outboxInside }] = await manager.query(`SELECT count(*)::int AS count FROM es_outbox`);
          });

          expect(inner.id).toBeUndefined();
          expect(outboxInside).toBe(perWrite * outbox.reactors.length);
          const log = (await outboxLog()).slice(logged);
          expect(log).toHaveLength(perWrite * outbox.reactors.length);
          expect(log.every((row) => row.tx === outer.txId)).toBe(true);
          expect(log.filter((row) => row.eventId === outer.id).map((row) => row.reactor).sort(byKey)).toEqual([...outbox.reactors].sort(byKey));
        });
      }
    }
  });
}
