import { DataSource, type QueryRunner } from 'typeorm';
import {
  AggregateEvent,
  ConcurrencyError,
  EventApplyError,
  EventSourcing,
  EventSourcingConfigError,
  UsageError,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { duplicateTypeEntities, sameTableDuplicateEntities } from '../support/extra-models';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionNoteAdded,
  SubscriptionRenamed,
  subscriptionEntities,
} from '../support/subscription-model';
import {
  columnsOf,
  countEvents,
  eventRows,
  loadSubscription,
  subscriptionRow,
  writePathLint,
} from '../support/write-path-lint';
import { rejectionOf } from '../support/rejection';

writePathLint('manager.save(event)', ({ manager, event }) => manager.save(event), { inTransactions: true });
writePathLint('es.append(event)', ({ es, manager, event }) => es.append(event, { manager }), { inTransactions: true });
writePathLint(
  'manager.transaction(m => m.save(event))',
  ({ manager, event }) => manager.transaction((transaction) => transaction.save(event)),
  // Inside a user transaction this nests savepoints, whose released copies of the caller's
  // instance must merge into the right level.
  { inTransactions: true },
);

/** Polls until `condition` holds; fails after `attempts` tries (a guard against hanging, not a timing assertion). */
async function waitUntil(condition: () => Promise<boolean>, what: string, attempts = 1000): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting until ${what}`);
}

/** A promise and the function that resolves it: a one-shot signal between concurrent tasks. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((resolve) => (fire = resolve));
  return { promise, fire };
}

describe('write path', () => {
  let dataSource: DataSource;
  let es: EventSourcing;
  const committed: AggregateEvent[][] = [];

  async function createSubscription(userId = 1): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
    const subscription = await loadSubscription(dataSource, created.aggregateId);
    committed.length = 0; // only what the test itself writes
    return subscription;
  }

  beforeAll(async () => {
    // Room for the 20 connections of the concurrency test plus the blocker.
    dataSource = await testDataSource('write_path', subscriptionEntities, { extra: { max: 30 } });
    es = await EventSourcing.attach(dataSource);
    es.afterCommit((events) => committed.push(events));
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  beforeEach(() => {
    committed.length = 0;
  });

  test("the talk's Subscription example: created by its first event, then activated", async () => {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1001 }));

    expect(created).toBeInstanceOf(SubscriptionCreated);
    expect(created.id).toEqual(expect.any(Number));
    expect(created.aggregateId).toEqual(expect.any(Number));
    expect(created.position).toEqual(expect.any(Number));
    expect(created.txId).toEqual(expect.any(Number));
    expect(created.version).toBe(1);
    const [createdRow] = await eventRows(dataSource, created.aggregateId);
    expect(createdRow).toMatchObject({ id: String(created.id), subscription_id: created.aggregateId, version: 1 });
    expect(await subscriptionRow(dataSource, created.aggregateId)).toMatchObject({ userId: 1001, status: 'pending', version: 1 });

    const subscription = await loadSubscription(dataSource, created.aggregateId);
    const event = await dataSource.manager.save(
      SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }),
    );

    expect(subscription.status).toBe('active');
    expect(subscription.stripeKey).toBe('sub_66123');
    expect(subscription.version).toBe(2);
    expect(subscription.activatedAt).toBeInstanceOf(Date);
    expect(subscription.activatedAt!.getTime()).toBe(event.createdAt.getTime());
    expect(event).toMatchObject({ aggregateId: subscription.id, version: 2, metadata: { notificationId: 33456 } });

    const row = await subscriptionRow(dataSource, subscription.id);
    expect(row).toMatchObject({ id: subscription.id, userId: 1001, status: 'active', stripeKey: 'sub_66123', version: 2 });
    expect(row!.activatedAt.getTime()).toBe(event.createdAt.getTime());

    const rows = await eventRows(dataSource, subscription.id);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatchObject({
      id: String(event.id),
      subscription_id: subscription.id,
      version: 2,
      type: 'Subscription.Activated',
      schema_version: 1,
      data: { stripeKey: 'sub_66123' },
      metadata: { notificationId: 33456 },
      position: String(event.position),
      tx_id: String(event.txId),
    });
    expect(rows[1].created_at.getTime()).toBe(event.createdAt.getTime());
    expect(Number(rows[1].position)).toBeGreaterThan(Number(rows[0].position));
    // The jsonb is stored as jsonb, not as a JSON string.
    const [types] = await dataSource.query(
      `SELECT jsonb_typeof(data) AS data, jsonb_typeof(metadata) AS metadata, metadata->'notificationId' AS n FROM subscription_events WHERE id = $1`,
      [event.id],
    );
    expect(types).toEqual({ data: 'object', metadata: 'object', n: 33456 });
    expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
  });

  test('an unsaved new Subscription() passed as the aggregate is created and gets its id and state', async () => {
    const subscription = new Subscription();
    const event = await dataSource.manager.save(SubscriptionCreated.build({ subscription, userId: 1002 }));

    expect(subscription.id).toEqual(expect.any(Number));
    expect(event.aggregateId).toBe(subscription.id);
    expect(subscription).toMatchObject({ userId: 1002, status: 'pending', stripeKey: null, notes: [], version: 1 });
    const row = await subscriptionRow(dataSource, subscription.id);
    expect(row).toMatchObject({ id: subscription.id, userId: 1002, status: 'pending', version: 1 });
    expect(subscription.insertedAt.getTime()).toBe(row!.insertedAt.getTime());

    await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_new' }));
    expect(subscription).toMatchObject({ status: 'active', version: 2 });
  });

  test('apply throws: EventApplyError naming type and aggregate; no event row, row and caller unchanged', async () => {
    const subscription = await createSubscription();
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'too expensive' }));
    expect(subscription.status).toBe('cancelled');
    committed.length = 0;
    const rowBefore = await subscriptionRow(dataSource, subscription.id);
    const before = columnsOf(subscription);
    const eventsBefore = await countEvents(dataSource);

    const error = await rejectionOf(dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'again' })));

    expect(error).toBeInstanceOf(EventApplyError);
    expect(error.message).toBe(`Subscription.Cancelled.apply failed on Subscription ${subscription.id}: already cancelled`);
    expect(error).toMatchObject({ eventType: 'Subscription.Cancelled', aggregateType: 'Subscription', aggregateId: subscription.id });
    expect((error.cause as Error).message).toBe('already cancelled');
    expect(await countEvents(dataSource)).toBe(eventsBefore);
    expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
    expect(columnsOf(subscription)).toEqual(before);
    expect(committed).toEqual([]);
  });

  test('the INSERT fails after apply succeeded: aggregate unchanged in the database, caller instance restored', async () => {
    await dataSource.query(`ALTER TABLE subscription_events ADD CONSTRAINT no_bad CHECK (data->>'stripeKey' IS DISTINCT FROM 'explode')`);
    try {
      const subscription = await createSubscription();
      await dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'fine' }));
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const event = SubscriptionRenamed.build({ subscription, stripeKey: 'explode' });
      const error = await rejectionOf(dataSource.manager.save(event));

      expect(error.message).toContain('violates check constraint "no_bad"');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(subscription).toMatchObject({ stripeKey: 'fine', version: 2 });
      expect(event.id).toBeUndefined();
      expect(committed.flat()).toHaveLength(1);

      // es.append and a user transaction restore the instance the same way.
      await expect(es.append(SubscriptionRenamed.build({ subscription, stripeKey: 'explode' }))).rejects.toThrow('no_bad');
      expect(columnsOf(subscription)).toEqual(before);
      await expect(
        dataSource.transaction((manager) => manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'explode' }))),
      ).rejects.toThrow('no_bad');
      expect(columnsOf(subscription)).toEqual(before);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
    } finally {
      await dataSource.query('ALTER TABLE subscription_events DROP CONSTRAINT no_bad');
    }
  });

  test('20 events saved concurrently from separate connections, each holding a stale instance: versions 2..21, row equals replay', async () => {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 7 }));
    const id = created.aggregateId as number;
    const second = new DataSource({ ...dataSource.options, synchronize: false, extra: { max: 15 } });
    await second.initialize();
    const secondEs = await EventSourcing.attach(second);
    const runners: QueryRunner[] = [];
    try {
      // Every writer loads its own instance before anything is written: all of them are stale.
      const writers = await Promise.all(
        Array.from({ length: 20 }, async (_, index) => {
          const queryRunner = (index % 2 === 0 ? dataSource : second).createQueryRunner();
          runners.push(queryRunner);
          await queryRunner.connect();
          const stale = await queryRunner.manager.findOneByOrFail(Subscription, { id });
          return { queryRunner, stale, index };
        }),
      );
      expect(writers.every(({ stale }) => stale.version === 1)).toBe(true);

      // Hold the row so that every writer is queued on its lock before the first one proceeds.
      const blocker = dataSource.createQueryRunner();
      runners.push(blocker);
      await blocker.connect();
      await blocker.startTransaction();
      await blocker.query('SELECT id FROM subscription WHERE id = $1 FOR UPDATE', [id]);

      const saves = writers.map(({ queryRunner, stale, index }) =>
        queryRunner.manager.save(SubscriptionNoteAdded.build({ subscription: stale, note: `note ${index}` })),
      );
      const settled = Promise.allSettled(saves);
      await waitUntil(async () => {
        const [{ waiting }] = await dataSource.query(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return waiting === 20;
      }, 'all 20 writers wait for the row lock');
      await blocker.commitTransaction();

      const results = await settled;
      const failures = results.filter((result) => result.status === 'rejected');
      expect(failures).toEqual([]);
      const events = await Promise.all(saves);

      expect(events.map((event) => event.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
      const rows = (await eventRows(dataSource, id)).slice(1); // after Subscription.Created
      expect(rows.map((row) => row.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
      const row = await subscriptionRow(dataSource, id);
      expect(row!.version).toBe(21);
      expect([...row!.notes].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `note ${i}`).sort());
      expect(row!.notes).toEqual(rows.map((r) => r.data.note));
      expect(await es.verify(Subscription, { id })).toEqual([]);
      // Each caller's stale instance caught up to the state its own event produced.
      for (const [index, { stale }] of writers.entries()) {
        expect(stale.version).toBe(events[index].version);
        expect(stale.notes).toEqual(rows.slice(0, stale.version - 1).map((r) => r.data.note));
      }
    } finally {
      for (const queryRunner of runners) if (!queryRunner.isReleased) await queryRunner.release();
      await secondEs.close();
      await second.destroy();
    }
  });

  describe('expected versions', () => {
    test('Event.build(attrs, { expectedVersion }) that does not match: ConcurrencyError, nothing written', async () => {
      const subscription = await createSubscription();
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'one' }));
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);

      const error = await rejectionOf(
        dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'two' }, { expectedVersion: 1 })),
      );

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({
        aggregateType: 'Subscription',
        aggregateId: subscription.id,
        expectedVersion: 1,
        actualVersion: 2,
        retryable: false,
        code: 'CONCURRENCY',
      });
      expect(error.message).toBe(`Subscription ${subscription.id}: expected version 1, but it is at version 2`);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect((await eventRows(dataSource, subscription.id)).map((r) => r.version)).toEqual([1, 2]);
      expect(columnsOf(subscription)).toEqual(before);
    });

    test('es.append(event, { expectedVersion }) that does not match: ConcurrencyError, nothing written', async () => {
      const subscription = await createSubscription();
      const stale = await loadSubscription(dataSource, subscription.id);
      await es.append(SubscriptionNoteAdded.build({ subscription, note: 'one' }));
      await es.append(SubscriptionNoteAdded.build({ subscription, note: 'two' }));
      const rowBefore = await subscriptionRow(dataSource, subscription.id);

      const error = await rejectionOf(
        es.append(SubscriptionNoteAdded.build({ subscription: stale, note: 'three' }), { expectedVersion: stale.version }),
      );

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({
        aggregateType: 'Subscription',
        aggregateId: subscription.id,
        expectedVersion: 1,
        actualVersion: 3,
        retryable: false,
      });
      expect(error.message).toBe(`Subscription ${subscription.id}: expected version 1, but it is at version 3`);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect((await eventRows(dataSource, subscription.id)).map((r) => r.version)).toEqual([1, 2, 3]);
      expect(stale).toMatchObject({ version: 1, notes: [] });
      expect(committed.flat().map((e) => e.version)).toEqual([2, 3]);
    });

    test('a matching expected version writes, from build and from append', async () => {
      const subscription = await createSubscription();
      const first = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'a' }, { expectedVersion: 1 }));
      const second = await es.append(SubscriptionNoteAdded.build({ subscription, note: 'b' }), { expectedVersion: 2 });

      expect([first.version, second.version]).toEqual([2, 3]);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 3, notes: ['a', 'b'] });
    });

    test('expected version 0 creates an aggregate; any other expected version for a new aggregate is a conflict', async () => {
      const created = await es.append(SubscriptionCreated.build({ userId: 1003 }), { expectedVersion: 0 });
      expect(created.version).toBe(1);
      const fromBuild = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1004 }, { expectedVersion: 0 }));
      expect(fromBuild.version).toBe(1);

      const [{ count: before }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      const eventsBefore = await countEvents(dataSource);
      const error = await rejectionOf(es.append(SubscriptionCreated.build({ userId: 1005 }), { expectedVersion: 1 }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ aggregateType: 'Subscription', expectedVersion: 1, actualVersion: 0, retryable: false });
      expect(error.message).toBe('Subscription (new): expected version 1, but it is at version 0');
      expect(error.aggregateId).toBeUndefined();
      const [{ count: after }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      expect(after).toBe(before);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('an existing aggregate whose caller expects version 0 conflicts', async () => {
      const subscription = await createSubscription();
      const error = await rejectionOf(
        dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'x' }, { expectedVersion: 0 })),
      );
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error.message).toBe(`Subscription ${subscription.id}: expected version 0, but it is at version 1`);
    });
  });

  describe('user transactions', () => {
    test('two events saved in one transaction commit together, with one transaction id', async () => {
      const subscription = await createSubscription();
      let first!: SubscriptionNoteAdded;
      let second!: SubscriptionNoteAdded;
      await dataSource.transaction(async (manager) => {
        first = await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'a' }));
        second = await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'b' }));
        // Not visible outside before COMMIT, and no listener has run.
        expect(await eventRows(dataSource, subscription.id)).toHaveLength(1);
        expect(committed).toEqual([]);
      });

      expect([first.version, second.version]).toEqual([2, 3]);
      expect(first.txId).toBe(second.txId);
      expect(second.position).toBeGreaterThan(first.position);
      expect(subscription).toMatchObject({ version: 3, notes: ['a', 'b'] });
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((r) => [r.version, r.data.note ?? null, Number(r.tx_id)])).toEqual([
        [1, null, expect.any(Number)],
        [2, 'a', first.txId],
        [3, 'b', first.txId],
      ]);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 3, notes: ['a', 'b'] });
      expect(committed).toHaveLength(1);
      expect(committed[0].map((e) => e.id)).toEqual([first.id, second.id]);
    });

    test('a transaction that throws after two saves commits neither; the caller instance is restored', async () => {
      const subscription = await createSubscription();
      await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_tx' }));
      const rowBefore = await subscriptionRow(dataSource, subscription.id);
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);
      committed.length = 0;

      await expect(
        dataSource.transaction(async (manager) => {
          await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'a' }));
          await manager.save(SubscriptionCancelled.build({ subscription, reason: 'b' }));
          expect(subscription).toMatchObject({ version: 4, status: 'cancelled', notes: ['a'] });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');

      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(committed).toEqual([]);
    });

    test('a savepoint that rolls back drops its event; the outer events commit and reach the after-commit listener', async () => {
      const subscription = await createSubscription();
      let savepointEvent!: SubscriptionNoteAdded;
      let outer: SubscriptionNoteAdded[] = [];

      await dataSource.transaction(async (manager) => {
        outer.push(await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'outer 1' })));
        await expect(
          manager.transaction(async (inner) => {
            savepointEvent = await inner.save(SubscriptionNoteAdded.build({ subscription, note: 'in savepoint' }));
            expect(subscription.notes).toEqual(['outer 1', 'in savepoint']);
            throw new Error('roll back the savepoint');
          }),
        ).rejects.toThrow('roll back the savepoint');
        // The caller's instance is back at the state before the savepoint.
        expect(subscription).toMatchObject({ version: 2, notes: ['outer 1'] });
        outer.push(await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'outer 2' })));
      });

      // The event the savepoint dropped is unwritten again: no id, no version.
      expect(savepointEvent.id).toBeUndefined();
      expect(savepointEvent.version).toBeUndefined();
      expect(outer.map((e) => e.version)).toEqual([2, 3]);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((r) => [r.version, r.data.note ?? null])).toEqual([
        [1, null],
        [2, 'outer 1'],
        [3, 'outer 2'],
      ]);
      const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM subscription_events WHERE data->>'note' = 'in savepoint'`);
      expect(count).toBe(0);
      expect(subscription).toMatchObject({ version: 3, notes: ['outer 1', 'outer 2'] });
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 3, notes: ['outer 1', 'outer 2'] });
      expect(committed).toHaveLength(1);
      expect(committed[0]).toHaveLength(2);
      expect(committed[0][0]).toBe(outer[0]);
      expect(committed[0][1]).toBe(outer[1]);
      expect(committed[0]).not.toContain(savepointEvent);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('a savepoint that is released keeps its event; the listener runs once, after the outer COMMIT', async () => {
      const subscription = await createSubscription();
      const written: SubscriptionNoteAdded[] = [];
      await dataSource.transaction(async (manager) => {
        written.push(await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'outer' })));
        await manager.transaction(async (inner) => {
          written.push(await inner.save(SubscriptionNoteAdded.build({ subscription, note: 'inner' })));
        });
        expect(committed).toEqual([]);
      });

      expect(committed).toHaveLength(1);
      expect(committed[0].map((e) => e.id)).toEqual(written.map((e) => e.id));
      expect((await eventRows(dataSource, subscription.id)).map((r) => r.version)).toEqual([1, 2, 3]);
    });

    test('a savepoint rollback that drops the event creating an aggregate drops the aggregate too', async () => {
      const subscription = new Subscription();
      const [{ count: before }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      await dataSource.transaction(async (manager) => {
        await manager
          .transaction(async (inner) => {
            await inner.save(SubscriptionCreated.build({ subscription, userId: 1006 }));
            throw new Error('no');
          })
          .catch(() => undefined);
      });
      const [{ count: after }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      expect(after).toBe(before);
      expect(subscription.id).toBeUndefined();
      expect(subscription.version).toBeUndefined();
      expect(committed).toEqual([]);
    });

    test('a serialization failure in a REPEATABLE READ transaction surfaces as a retryable ConcurrencyError', async () => {
      const subscription = await createSubscription();
      const snapshotTaken = signal();
      const otherCommitted = signal();
      let seenInSnapshot!: Subscription;

      const attempt = dataSource.transaction('REPEATABLE READ', async (manager) => {
        seenInSnapshot = await manager.findOneByOrFail(Subscription, { id: subscription.id });
        snapshotTaken.fire();
        await otherCommitted.promise;
        return manager.save(SubscriptionNoteAdded.build({ subscription: seenInSnapshot, note: 'from the snapshot' }));
      });
      const outcome = attempt.then(
        () => undefined,
        (error: unknown) => error,
      );

      await snapshotTaken.promise;
      const other = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'committed meanwhile' }));
      otherCommitted.fire();
      const error = (await outcome) as ConcurrencyError;

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({
        aggregateType: 'Subscription',
        aggregateId: subscription.id,
        expectedVersion: undefined,
        actualVersion: undefined,
        retryable: true,
      });
      expect(error.message).toContain(`Subscription ${subscription.id}: concurrent transaction conflict`);
      expect(error.message).toContain('could not serialize access');
      expect((error.cause as { driverError?: { code?: string } }).driverError?.code).toBe('40001');
      expect(other.version).toBe(2);
      expect(seenInSnapshot).toMatchObject({ version: 1, notes: [] });
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((r) => r.data.note ?? null)).toEqual([null, 'committed meanwhile']);

      // Retrying the same work (a fresh snapshot) succeeds.
      const retried = await dataSource.transaction('REPEATABLE READ', async (manager) => {
        const fresh = await manager.findOneByOrFail(Subscription, { id: subscription.id });
        return manager.save(SubscriptionNoteAdded.build({ subscription: fresh, note: 'from the snapshot' }));
      });
      expect(retried.version).toBe(3);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });
  });

  test('manager.save([e1, e2]) on one aggregate writes both in array order, in one transaction', async () => {
    const subscription = await createSubscription();
    const [note, activated] = await dataSource.manager.save([
      SubscriptionNoteAdded.build({ subscription, note: 'first' }),
      SubscriptionActivated.build({ subscription, stripeKey: 'sub_array' }),
    ]);

    expect([note.version, activated.version]).toEqual([2, 3]);
    expect(note.txId).toBe(activated.txId);
    expect(subscription).toMatchObject({ version: 3, notes: ['first'], status: 'active', stripeKey: 'sub_array' });
    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.map((r) => [r.version, r.type])).toEqual([
      [1, 'Subscription.Created'],
      [2, 'Subscription.NoteAdded'],
      [3, 'Subscription.Activated'],
    ]);
    expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
  });

  test('manager.save([e1, e2]) where e1.apply throws writes neither aggregate, even after the ROLLBACK', async () => {
    const cancelled = await createSubscription();
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription: cancelled, reason: 'first' }));
    const other = await createSubscription();
    const otherBefore = columnsOf(other);
    const otherRowBefore = await subscriptionRow(dataSource, other.id);
    const eventsBefore = await countEvents(dataSource);

    const queryRunner = dataSource.createQueryRunner();
    try {
      const error = await rejectionOf(
        queryRunner.manager.save([
          SubscriptionCancelled.build({ subscription: cancelled, reason: 'again' }),
          SubscriptionNoteAdded.build({ subscription: other, note: 'must not survive' }),
        ]),
      );
      expect(error).toBeInstanceOf(EventApplyError);
      // A write still running after TypeORM's ROLLBACK would run on this connection in autocommit
      // mode; queries run in order, so one more round trip lets any such write finish first.
      await queryRunner.query('SELECT 1');
    } finally {
      await queryRunner.release();
    }

    expect(await countEvents(dataSource)).toBe(eventsBefore);
    expect(await subscriptionRow(dataSource, other.id)).toEqual(otherRowBefore);
    expect(columnsOf(other)).toEqual(otherBefore);
    expect(await es.verify(Subscription, { id: other.id })).toEqual([]);
  });

  test('save(event, { transaction: false }) outside a transaction is refused and writes nothing', async () => {
    const subscription = await createSubscription();
    const before = columnsOf(subscription);
    const rowBefore = await subscriptionRow(dataSource, subscription.id);
    const eventsBefore = await countEvents(dataSource);
    const [{ count: aggregatesBefore }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');

    const error = await rejectionOf(
      dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'no tx' }), { transaction: false }),
    );
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe(
      'Subscription.NoteAdded: transaction is missing: manager.insert(event) and save(event, { transaction: false }) write without one, but an event and its aggregate are written together: use manager.save(event) or es.append(event), or insert inside manager.transaction()',
    );

    const creating = await rejectionOf(dataSource.manager.save(SubscriptionCreated.build({ userId: 1007 }), { transaction: false }));
    expect(creating).toBeInstanceOf(UsageError);
    expect(creating.message).toContain('Subscription.Created: transaction is missing');
    const inserted = await rejectionOf(dataSource.manager.insert(SubscriptionNoteAdded, SubscriptionNoteAdded.build({ subscription, note: 'insert' }) as never));
    expect(inserted).toBeInstanceOf(UsageError);
    expect(inserted.message).toContain('manager.insert(event)');

    expect(await countEvents(dataSource)).toBe(eventsBefore);
    expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
    expect(columnsOf(subscription)).toEqual(before);
    const [{ count: aggregatesAfter }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
    expect(aggregatesAfter).toBe(aggregatesBefore);

    // Inside a user transaction, { transaction: false } only means "do not open another one".
    const inside = await dataSource.transaction((manager) =>
      manager.save(SubscriptionNoteAdded.build({ subscription, note: 'in tx' }), { transaction: false }),
    );
    expect(inside.version).toBe(2);
  });

  test('manager.insert(event) inside a transaction goes through the write path and reads back numbers', async () => {
    const subscription = await createSubscription(43);
    const event = SubscriptionNoteAdded.build({ subscription, note: 'inserted' });

    // TypeORM types insert() for plain partials; an event instance is what the write path needs.
    await dataSource.transaction((manager) => manager.insert(SubscriptionNoteAdded, event as never));

    expect(event).toMatchObject({ version: 2, aggregateId: subscription.id });
    expect([typeof event.id, typeof event.position, typeof event.txId]).toEqual(['number', 'number', 'number']);
    expect(subscription.notes).toEqual(['inserted']);
    expect((await eventRows(dataSource, subscription.id)).map((row) => row.version)).toEqual([1, 2]);
  });

  test('two classes claiming one type name fail at EventSourcing.attach with EventSourcingConfigError', async () => {
    // The two classes belong to different aggregates (tables), which TypeORM accepts.
    const misconfigured = await testDataSource('write_path_duplicate_type', duplicateTypeEntities);
    try {
      const error = await rejectionOf(EventSourcing.attach(misconfigured));

      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toBe(
        "event type 'DuplicateType.Opened' is claimed by both DuplicateTypeLedgerOpened and DuplicateTypeAccountOpened (as a name or an alias)",
      );
      // Nothing was registered or created, and attaching stays possible once fixed.
      expect(misconfigured.subscribers).toHaveLength(0);
      const [{ count }] = await misconfigured.query(`SELECT count(*)::int AS count FROM pg_trigger WHERE tgname = 'es_append_only'`);
      expect(count).toBe(0);
    } finally {
      await misconfigured.destroy();
    }
  });

  test('two classes of one events table claiming one type name are refused by TypeORM at initialize', async () => {
    const error = await rejectionOf(testDataSource('write_path_same_table_duplicate', sameTableDuplicateEntities));
    expect(error.message).toContain('SameTableDuplicateHappened and SameTableDuplicateHappenedAgain have the same discriminator values');
  });
});
