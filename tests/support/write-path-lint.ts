import { rejectionOf } from './rejection';
import type { DataSource } from 'typeorm';
import {
  AggregateEvent,
  AggregateNotFoundError,
  AggregateRequiredError,
  ConcurrencyError,
  EventApplyError,
  EventSourcing,
  InvalidEventDataError,
} from 'typeorm-event-sourcing';
import { testDataSource } from './database';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
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
 * writePathLint('manager.save(event)', ({ dataSource, event }) => dataSource.manager.save(event));
 * ```
 */
export interface WriteContext<E extends AggregateEvent = AggregateEvent> {
  /** The unsaved event, built with `Event.build` (possibly with `{ expectedVersion }`). */
  event: E;
  dataSource: DataSource;
  es: EventSourcing;
}

export type WritePath = <E extends AggregateEvent>(ctx: WriteContext<E>) => Promise<E>;

export interface WritePathLintOptions {
  /** The database name (see `testDataSource`); by default derived from the suite name. */
  database?: string;
  /** How to attach; by default `EventSourcing.attach(dataSource)`. */
  attach?: (dataSource: DataSource) => Promise<EventSourcing>;
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

/** Every column value of an aggregate instance (deep copies), to compare before and after. */
export function columnsOf(subscription: Subscription): Record<string, unknown> {
  const { events: _events, ...columns } = subscription as Subscription & Record<string, unknown>;
  return structuredClone(columns);
}

/** The subscription row as stored, through TypeORM. */
export async function loadSubscription(dataSource: DataSource, id: unknown): Promise<Subscription> {
  return dataSource.manager.findOneByOrFail(Subscription, { id: id as number });
}

function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '')
    .slice(0, 40);
}

/**
 * Registers `describe(name)` with the guarantees of a write path, against a database of its own
 * holding the Subscription model of tests/support/subscription-model.ts.
 */
export function writePathLint(name: string, write: WritePath, options: WritePathLintOptions = {}): void {
  describe(`write path lint: ${name}`, () => {
    let dataSource: DataSource;
    let es: EventSourcing;
    const committed: AggregateEvent[][] = [];

    const run = <E extends AggregateEvent>(event: E): Promise<E> => write({ event, dataSource, es });

    /** A subscription created through the plain path, loaded fresh. */
    async function createSubscription(userId = 1): Promise<Subscription> {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
      const subscription = await loadSubscription(dataSource, created.aggregateId);
      committed.length = 0; // only what the test itself writes
      return subscription;
    }

    beforeAll(async () => {
      dataSource = await testDataSource(options.database ?? `lint_${slug(name)}`, subscriptionEntities);
      es = await (options.attach ?? EventSourcing.attach)(dataSource);
      es.afterCommit((events) => committed.push(events));
      // A real INSERT failure after a successful apply: the events table refuses this stripe key.
      await dataSource.query(
        `ALTER TABLE subscription_events ADD CONSTRAINT lint_no_explode CHECK (data->>'stripeKey' IS DISTINCT FROM 'explode')`,
      );
    });

    afterAll(async () => {
      await es?.close();
      await dataSource?.destroy();
    });

    beforeEach(() => {
      committed.length = 0;
    });

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
        metadata: {},
        position: String(event.position),
        tx_id: String(event.txId),
      });
      expect(stored.created_at.getTime()).toBe(event.createdAt.getTime());
    });

    test('a later event is applied to the row and to the caller instance, and stored as written', async () => {
      const subscription = await createSubscription(42);
      const event = await run(
        SubscriptionActivated.build({ subscription, stripeKey: 'sub_lint', metadata: { notificationId: 7, source: 'lint' } }),
      );

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
      expect(rows[1].metadata).toEqual({ notificationId: 7, source: 'lint' });
      expect(rows[1].created_at.getTime()).toBe(event.createdAt.getTime());
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
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
      const [{ count: aggregatesBefore }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      const unsaved = new Subscription();

      for (const event of [SubscriptionNoteAdded.build({ note: 'orphan' }), SubscriptionNoteAdded.build({ subscription: unsaved, note: 'orphan' })]) {
        const error = await rejectionOf(run(event));
        expect(error).toBeInstanceOf(AggregateRequiredError);
        expect(error.message).toBe(
          'Subscription.NoteAdded needs an existing Subscription: build it with { subscription } (only event types declared @EventType(name, { creates: true }) create their aggregate)',
        );
        expect(event.id).toBeUndefined();
      }
      expect(unsaved.id).toBeUndefined();
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      const [{ count: aggregatesAfter }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      expect(aggregatesAfter).toBe(aggregatesBefore);
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

    test('apply throws: EventApplyError, nothing written, row and caller instance unchanged', async () => {
      const subscription = await createSubscription();
      await run(SubscriptionCancelled.build({ subscription, reason: 'first' }));
      committed.length = 0;
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(run(SubscriptionCancelled.build({ subscription, reason: 'again' })));

      expect(error).toBeInstanceOf(EventApplyError);
      expect(error.message).toContain('Subscription.Cancelled');
      expect(error.message).toContain(`Subscription ${subscription.id}`);
      expect(error.message).toContain('already cancelled');
      expect(error.eventType).toBe('Subscription.Cancelled');
      expect(error.aggregateId).toBe(subscription.id);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(committed).toEqual([]);
    });

    test('the INSERT fails after apply succeeded: nothing written, row unchanged, caller instance restored', async () => {
      const subscription = await createSubscription();
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(run(SubscriptionRenamed.build({ subscription, stripeKey: 'explode' })));

      expect(error.message).toContain('lint_no_explode');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(subscription.stripeKey).toBeNull();
      expect(committed).toEqual([]);
    });

    test('invalid data: InvalidEventDataError naming type and attribute, nothing written, caller unchanged', async () => {
      const subscription = await createSubscription();
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(
        run(SubscriptionNoteAdded.build({ subscription, note: 'ok', metadata: { score: Number.NaN } })),
      );

      expect(error).toBeInstanceOf(InvalidEventDataError);
      expect(error.message).toContain('Subscription.NoteAdded');
      expect(error.message).toContain('metadata.score');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 1, notes: [] });
    });

    test('an event for an aggregate that does not exist: AggregateNotFoundError, nothing written', async () => {
      const ghost = Object.assign(new Subscription(), { id: 987654 });
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(run(SubscriptionNoteAdded.build({ subscription: ghost, note: 'boo' })));

      expect(error).toBeInstanceOf(AggregateNotFoundError);
      expect(error.message).toBe('Subscription 987654 does not exist');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('an expected version from build: a mismatch raises ConcurrencyError and writes nothing; a match writes', async () => {
      const subscription = await createSubscription();
      const stale = await loadSubscription(dataSource, subscription.id);
      await run(SubscriptionNoteAdded.build({ subscription, note: 'one' }));

      const error = await rejectionOf(
        run(SubscriptionNoteAdded.build({ subscription: stale, note: 'two' }, { expectedVersion: stale.version })),
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

    test('after-commit listeners get the written event once, after COMMIT', async () => {
      const subscription = await createSubscription();
      committed.length = 0;
      const seenFromOutside: Promise<unknown[]>[] = [];
      const off = es.afterCommit((events) => {
        // Another connection must already see the row: the listener runs after COMMIT.
        seenFromOutside.push(dataSource.query('SELECT id FROM subscription_events WHERE id = $1', [events[0].id]));
      });
      try {
        const event = await run(SubscriptionNoteAdded.build({ subscription, note: 'listened' }));
        expect(committed).toHaveLength(1);
        expect(committed[0].map((e) => [e.id, e.type, e.version])).toEqual([[event.id, 'Subscription.NoteAdded', 2]]);
        expect(seenFromOutside).toHaveLength(1);
        expect(await seenFromOutside[0]).toHaveLength(1);
      } finally {
        off();
      }
    });

    test('positions grow across writes and each write has its own transaction id', async () => {
      const subscription = await createSubscription();
      const first = await run(SubscriptionNoteAdded.build({ subscription, note: 'a' }));
      const second = await run(SubscriptionNoteAdded.build({ subscription, note: 'b' }));

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
  });
}
