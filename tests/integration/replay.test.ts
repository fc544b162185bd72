import { rejectionOf } from '../support/rejection';
import type { DataSource } from 'typeorm';
import {
  AggregateNotFoundError,
  EventSourcing,
  UsageError,
  VersionOutOfRangeError,
  type AggregateEvent,
  type RebuildProgress,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { ReplayLedger, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';

/** The columns of `subscription` that events decide (everything but id, viewCount and the date columns). */
const SOURCED = ['userId', 'status', 'stripeKey', 'activatedAt', 'notes', 'version'] as const;
const MISSING_ID = 987654;

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('replay', [...subscriptionEntities, ...replayLedgerEntities]);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error a promise rejects with (fails the test when it resolves). */

/** The subscription row exactly as PostgreSQL holds it, read without TypeORM. */
async function rawRow(id: number): Promise<Record<string, any>> {
  const rows = await dataSource.query('SELECT * FROM "subscription" WHERE "id" = $1', [id]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

function pick(source: Record<string, any>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, source[key]]));
}

async function load(id: number): Promise<Subscription> {
  return dataSource.manager.findOneByOrFail(Subscription, { id });
}

/** Created -> Activated -> NoteAdded x2, `gap` ms apart; returns the saved events. */
async function lifecycle(userId: number, stripeKey: string, gap = 0): Promise<{ id: number; saved: AggregateEvent<Subscription>[] }> {
  const saved: AggregateEvent<Subscription>[] = [];
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
  saved.push(created);
  const id = created.aggregateId as number;
  if (gap) await sleep(gap);
  saved.push(await dataSource.manager.save(SubscriptionActivated.build({ subscription: await load(id), stripeKey })));
  if (gap) await sleep(gap);
  saved.push(await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: await load(id), note: `${stripeKey}-first` })));
  if (gap) await sleep(gap);
  saved.push(await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: await load(id), note: `${stripeKey}-second` })));
  return { id, saved };
}

/** A row written by plain TypeORM, with no events (a CRUD row not yet baselined). */
async function legacyRow(): Promise<number> {
  const result = await dataSource.manager.insert(Subscription, {
    userId: 11,
    status: 'legacy',
    stripeKey: 'sk_legacy',
    notes: ['imported'],
    viewCount: 3,
    version: 0,
  });
  return result.identifiers[0].id as number;
}

async function truncate(): Promise<void> {
  // Events tables refuse TRUNCATE unless the transaction allows it, as resetEventStore does.
  await dataSource.transaction(async (manager) => {
    await manager.query('SET LOCAL typeorm_es.allow_truncate = on');
    await manager.query('TRUNCATE "subscription_events", "subscription" RESTART IDENTITY');
  });
}

describe('history', () => {
  test('returns the typed events of one aggregate in version order, with their data', async () => {
    const trialEndsAt = new Date('2030-01-02T03:04:05.678Z');
    const details = { tags: ['a', 'b'], at: 'x', nested: { level: 2, ok: true } };
    const first = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1, metadata: { by: 'history-test' } }));
    const other = await dataSource.manager.save(SubscriptionCreated.build({ userId: 2 }));
    const id = first.aggregateId as number;
    // Interleave writes of another aggregate: its events must not show up.
    await dataSource.manager.save(SubscriptionActivated.build({ subscription: await load(id), stripeKey: 'sk_h', trialEndsAt }));
    await dataSource.manager.save(SubscriptionActivated.build({ subscription: await load(other.aggregateId), stripeKey: 'sk_other' }));
    await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: await load(id), note: 'n1', details }));
    await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: await load(id), note: 'n2' }));
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription: await load(id), reason: 'too expensive' }));

    const history = await es.history(Subscription, id);

    expect(history.map((event) => event.constructor)).toEqual([
      SubscriptionCreated,
      SubscriptionActivated,
      SubscriptionNoteAdded,
      SubscriptionNoteAdded,
      SubscriptionCancelled,
    ]);
    expect(history.map((event) => event.version)).toEqual([1, 2, 3, 4, 5]);
    expect(history.map((event) => event.type)).toEqual([
      'Subscription.Created',
      'Subscription.Activated',
      'Subscription.NoteAdded',
      'Subscription.NoteAdded',
      'Subscription.Cancelled',
    ]);
    expect(history.every((event) => event.aggregateId === id)).toBe(true);
    expect((history[0] as SubscriptionCreated).userId).toBe(1);
    expect(history[0].metadata).toEqual({ by: 'history-test' });
    expect((history[1] as SubscriptionActivated).stripeKey).toBe('sk_h');
    expect((history[1] as SubscriptionActivated).trialEndsAt).toBeInstanceOf(Date);
    expect((history[1] as SubscriptionActivated).trialEndsAt!.getTime()).toBe(trialEndsAt.getTime());
    expect((history[2] as SubscriptionNoteAdded).note).toBe('n1');
    expect((history[2] as SubscriptionNoteAdded).details).toEqual(details);
    expect((history[3] as SubscriptionNoteAdded).note).toBe('n2');
    expect((history[4] as SubscriptionCancelled).reason).toBe('too expensive');
    // Global positions follow the write order.
    const positions = history.map((event) => event.position);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  });

  test('of an aggregate that does not exist is AggregateNotFoundError naming the type and id', async () => {
    const error = await rejectionOf(es.history(Subscription, MISSING_ID));
    expect(error).toBeInstanceOf(AggregateNotFoundError);
    expect(error.message).toBe(`Subscription ${MISSING_ID} does not exist`);
    expect((error as AggregateNotFoundError).aggregateType).toBe('Subscription');
    expect((error as AggregateNotFoundError).aggregateId).toBe(MISSING_ID);
    expect((error as AggregateNotFoundError).code).toBe('AGGREGATE_NOT_FOUND');
  });

  test('of an existing aggregate without events is empty', async () => {
    const id = await legacyRow();
    expect(await es.history(Subscription, id)).toEqual([]);
  });

  test('aggregate.events loaded as a relation is in version order, even when rows come back out of order', async () => {
    const { id } = await lifecycle(5, 'sk_rel');
    // Move version 1 to the end of the heap (triggers off for this one maintenance statement),
    // so that PostgreSQL returns the rows out of version order.
    await dataSource.query('ALTER TABLE "subscription_events" DISABLE TRIGGER "es_append_only"');
    try {
      await dataSource.query('UPDATE "subscription_events" SET "metadata" = "metadata" WHERE "subscription_id" = $1 AND "version" IN (1, 2)', [id]);
    } finally {
      await dataSource.query('ALTER TABLE "subscription_events" ENABLE TRIGGER "es_append_only"');
    }
    // Sequential scans only, so the rows come back in heap order, not index (version) order.
    await dataSource.transaction(async (manager) => {
      await manager.query('SET LOCAL enable_indexscan = off');
      await manager.query('SET LOCAL enable_bitmapscan = off');
      await manager.query('SET LOCAL enable_indexonlyscan = off');
      const physical = await manager.query('SELECT "version" FROM "subscription_events" WHERE "subscription_id" = $1', [id]);
      expect(physical.map((row: { version: number }) => row.version)).toEqual([3, 4, 1, 2]);

      const subscription = await manager.findOneOrFail(Subscription, { where: { id }, relations: { events: true } });
      expect(subscription.events.map((event) => event.version)).toEqual([1, 2, 3, 4]);
      expect(subscription.events.map((event) => event.constructor)).toEqual([
        SubscriptionCreated,
        SubscriptionActivated,
        SubscriptionNoteAdded,
        SubscriptionNoteAdded,
      ]);
      const [withEvents] = await manager.find(Subscription, { where: { id }, relations: { events: true } });
      expect(withEvents.events.map((event) => event.version)).toEqual([1, 2, 3, 4]);
    });
  });
});

describe('stateAt by version', () => {
  test('equals the state after each version, as an unsaved instance', async () => {
    const { id, saved } = await lifecycle(3, 'sk_v');
    const before = await rawRow(id);

    const v1 = (await es.stateAt(Subscription, id, { version: 1 }))!;
    expect(v1).toBeInstanceOf(Subscription);
    expect(pick(v1, ['id', ...SOURCED])).toEqual({
      id,
      userId: 3,
      status: 'pending',
      stripeKey: null,
      activatedAt: null,
      notes: [],
      version: 1,
    });

    const v2 = (await es.stateAt(Subscription, id, { version: 2 }))!;
    expect(pick(v2, ['id', ...SOURCED])).toEqual({
      id,
      userId: 3,
      status: 'active',
      stripeKey: 'sk_v',
      activatedAt: saved[1].createdAt,
      notes: [],
      version: 2,
    });
    expect(v2.activatedAt!.getTime()).toBe(saved[1].createdAt.getTime());

    const v3 = (await es.stateAt(Subscription, id, { version: 3 }))!;
    expect(v3.notes).toEqual(['sk_v-first']);
    expect(v3.version).toBe(3);

    const last = (await es.stateAt(Subscription, id, { version: 4 }))!;
    expect(pick(last, SOURCED)).toEqual(pick(before, SOURCED));
    expect(last.notes).toEqual(['sk_v-first', 'sk_v-second']);

    // Asking again gives the same answer: nothing is shared between replays.
    last.notes.push('mutated');
    last.status = 'mutated';
    expect((await es.stateAt(Subscription, id, { version: 1 }))!.notes).toEqual([]);
    expect((await es.stateAt(Subscription, id, { version: 4 }))!.notes).toEqual(['sk_v-first', 'sk_v-second']);

    // None of this touched the row.
    expect(await rawRow(id)).toEqual(before);
  });

  test('a version beyond the last is VersionOutOfRangeError; one that is not a positive integer is a UsageError', async () => {
    const { id } = await lifecycle(4, 'sk_range');

    const error = await rejectionOf(es.stateAt(Subscription, id, { version: 9 }));
    expect(error).toBeInstanceOf(VersionOutOfRangeError);
    expect(error.message).toBe(`Subscription ${id} has no version 9 (latest is 4)`);
    expect(error).toMatchObject({ aggregateType: 'Subscription', aggregateId: id, requestedVersion: 9, latestVersion: 4 });

    const next = await rejectionOf(es.stateAt(Subscription, id, { version: 5 }));
    expect(next).toBeInstanceOf(VersionOutOfRangeError);
    expect(next.message).toBe(`Subscription ${id} has no version 5 (latest is 4)`);

    for (const invalid of [0, -1, 1.5]) {
      const error = await rejectionOf(es.stateAt(Subscription, id, { version: invalid }));
      expect(error).toBeInstanceOf(UsageError);
      expect(error.message).toBe(`stateAt(Subscription): version must be an integer from 1 to 2147483647, got ${invalid} (number)`);
    }
  });

  test('of an aggregate without events: version 1 is out of range, a time before any event is null', async () => {
    const id = await legacyRow();
    expect(await es.stateAt(Subscription, id, { at: new Date() })).toBeNull();
    const error = await rejectionOf(es.stateAt(Subscription, id, { version: 1 }));
    expect(error).toBeInstanceOf(VersionOutOfRangeError);
    expect(error.message).toBe(`Subscription ${id} has no version 1 (latest is 0)`);
  });

  test('of a missing aggregate is AggregateNotFoundError', async () => {
    for (const options of [{ version: 1 }, { at: new Date() }]) {
      const error = await rejectionOf(es.stateAt(Subscription, MISSING_ID, options));
      expect(error).toBeInstanceOf(AggregateNotFoundError);
      expect(error.message).toBe(`Subscription ${MISSING_ID} does not exist`);
    }
  });
});

describe('stateAt by time', () => {
  test('createdAt round-trips exactly and `at` is inclusive to the millisecond', async () => {
    const { id, saved } = await lifecycle(8, 'sk_t', 15);
    const times = saved.map((event) => event.createdAt.getTime());
    // The events were written apart, so every createdAt is a distinct millisecond.
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(new Set(times).size).toBe(times.length);

    // The createdAt the write path set (and apply saw) is exactly what is stored and loaded.
    const history = await es.history(Subscription, id);
    expect(history.map((event) => event.createdAt.getTime())).toEqual(times);
    const raw = await dataSource.query('SELECT "created_at" FROM "subscription_events" WHERE "subscription_id" = $1 ORDER BY "version"', [id]);
    expect(raw.map((row: { created_at: Date }) => row.created_at.getTime())).toEqual(times);
    expect((await rawRow(id)).activatedAt.getTime()).toBe(times[1]);

    const at = (ms: number) => es.stateAt(Subscription, id, { at: new Date(ms) });

    expect(await at(times[0] - 1)).toBeNull();
    expect(await at(new Date('2000-01-01T00:00:00.000Z').getTime())).toBeNull();

    const exactlyFirst = (await at(times[0]))!;
    expect(exactlyFirst.version).toBe(1);
    expect(exactlyFirst.status).toBe('pending');

    const justBeforeSecond = (await at(times[1] - 1))!;
    expect(justBeforeSecond.version).toBe(1);
    expect(justBeforeSecond.stripeKey).toBeNull();

    const exactlySecond = (await at(times[1]))!;
    expect(exactlySecond.version).toBe(2);
    expect(exactlySecond.status).toBe('active');
    expect(exactlySecond.stripeKey).toBe('sk_t');
    expect(exactlySecond.activatedAt!.getTime()).toBe(times[1]);
    expect(exactlySecond.notes).toEqual([]);

    const justBeforeLast = (await at(times[3] - 1))!;
    expect(justBeforeLast.version).toBe(3);
    expect(justBeforeLast.notes).toEqual(['sk_t-first']);

    const exactlyLast = (await at(times[3]))!;
    expect(exactlyLast.version).toBe(4);

    const future = (await at(new Date('2999-12-31T00:00:00.000Z').getTime()))!;
    expect(pick(future, SOURCED)).toEqual(pick(await rawRow(id), SOURCED));
    expect(future.version).toBe(4);
  });

  test('replays only the longest run of contiguous versions written at or before `at`', async () => {
    const { id, saved } = await lifecycle(9, 'sk_skew', 15);
    // Simulate clock skew between writers: version 3 carries a time before version 2's.
    const skewed = new Date(saved[1].createdAt.getTime() - 5);
    await dataSource.query('ALTER TABLE "subscription_events" DISABLE TRIGGER "es_append_only"');
    try {
      await dataSource.query('UPDATE "subscription_events" SET "created_at" = $1 WHERE "subscription_id" = $2 AND "version" = 3', [skewed, id]);
    } finally {
      await dataSource.query('ALTER TABLE "subscription_events" ENABLE TRIGGER "es_append_only"');
    }
    // At the skewed time versions 1 and 3 qualify, 2 does not: only version 1 is replayed.
    const state = (await es.stateAt(Subscription, id, { at: skewed }))!;
    expect(state.version).toBe(1);
    expect(state.notes).toEqual([]);
    // Once version 2 qualifies too, the run reaches version 3.
    const later = (await es.stateAt(Subscription, id, { at: saved[1].createdAt }))!;
    expect(later.version).toBe(3);
    expect(later.notes).toEqual(['sk_skew-first']);
  });
});

describe('rebuild', () => {
  test('writes the replay over a tampered row, leaves excluded columns alone, returns the row', async () => {
    const { id } = await lifecycle(21, 'sk_rb');
    const before = await rawRow(id);
    await dataSource.query(
      `UPDATE "subscription" SET "status" = 'hacked', "stripeKey" = 'sk_evil', "notes" = '["forged"]'::jsonb,
         "activatedAt" = NULL, "userId" = 666, "version" = 99, "viewCount" = 42 WHERE "id" = $1`,
      [id],
    );

    const rebuilt = await es.rebuild(Subscription, id);
    const after = await rawRow(id);
    const replayed = (await es.stateAt(Subscription, id, { version: 4 }))!;

    expect(pick(after, SOURCED)).toEqual(pick(replayed, SOURCED));
    expect(pick(after, SOURCED)).toEqual(pick(before, SOURCED));
    expect(after.status).toBe('active');
    expect(after.stripeKey).toBe('sk_rb');
    expect(after.notes).toEqual(['sk_rb-first', 'sk_rb-second']);
    expect(after.version).toBe(4);
    expect(after.viewCount).toBe(42); // excluded in @Aggregate: not sourced, not reset
    expect(after.insertedAt.getTime()).toBe(before.insertedAt.getTime());

    expect(rebuilt).toBeInstanceOf(Subscription);
    expect(pick(rebuilt, [...SOURCED, 'id', 'viewCount', 'insertedAt', 'updatedAt'])).toEqual(
      pick(after, [...SOURCED, 'id', 'viewCount', 'insertedAt', 'updatedAt']),
    );
    expect(await es.verify(Subscription, { id })).toEqual([]);
  });

  test('of a row that already matches its events writes nothing', async () => {
    const { id } = await lifecycle(22, 'sk_same');
    await dataSource.query('UPDATE "subscription" SET "viewCount" = 7 WHERE "id" = $1', [id]);
    const before = await rawRow(id);
    await sleep(5);
    const rebuilt = await es.rebuild(Subscription, id);
    expect(await rawRow(id)).toEqual(before); // updatedAt included: no UPDATE ran
    expect(pick(rebuilt, [...SOURCED, 'viewCount', 'updatedAt'])).toEqual(pick(before, [...SOURCED, 'viewCount', 'updatedAt']));
  });

  test('of a row whose version alone was tampered restores the version', async () => {
    const { id } = await lifecycle(23, 'sk_version');
    const before = await rawRow(id);
    await dataSource.query('UPDATE "subscription" SET "version" = 1 WHERE "id" = $1', [id]);
    expect(await es.verify(Subscription, { id })).toEqual([{ reason: 'drift', id, column: 'version', stored: 1, replayed: 4 }]);
    const rebuilt = await es.rebuild(Subscription, id);
    expect(rebuilt.version).toBe(4);
    expect(pick(await rawRow(id), SOURCED)).toEqual(pick(before, SOURCED));
    expect(await es.verify(Subscription, { id })).toEqual([]);
  });

  test('of an aggregate without events leaves the row untouched', async () => {
    const id = await legacyRow();
    const before = await rawRow(id);
    const rebuilt = await es.rebuild(Subscription, id);
    expect(await rawRow(id)).toEqual(before);
    expect(rebuilt).toBeInstanceOf(Subscription);
    expect(pick(rebuilt, [...SOURCED, 'viewCount'])).toEqual(pick(before, [...SOURCED, 'viewCount']));
    expect(rebuilt.status).toBe('legacy');
    expect(rebuilt.version).toBe(0);
  });

  test('of a missing aggregate is AggregateNotFoundError', async () => {
    const error = await rejectionOf(es.rebuild(Subscription, MISSING_ID));
    expect(error).toBeInstanceOf(AggregateNotFoundError);
    expect(error.message).toBe(`Subscription ${MISSING_ID} does not exist`);
  });
});

describe('verify', () => {
  beforeEach(truncate);

  test('reports exactly the tampered sourced columns and versions', async () => {
    const ids: number[] = [];
    for (let n = 1; n <= 5; n += 1) ids.push((await lifecycle(100 + n, `sk_${n}`)).id);
    const [a, b, c, d] = ids;
    expect(await es.verify(Subscription)).toEqual([]);
    const activatedAtD: Date = (await rawRow(d)).activatedAt;

    await dataSource.query(`UPDATE "subscription" SET "status" = 'hacked', "notes" = '["forged"]'::jsonb WHERE "id" = $1`, [b]);
    await dataSource.query(
      `UPDATE "subscription" SET "stripeKey" = 'sk_evil', "activatedAt" = "activatedAt" + interval '1 second', "version" = 7 WHERE "id" = $1`,
      [d],
    );
    // Not sourced: excluded (viewCount), create/update dates.
    await dataSource.query(
      `UPDATE "subscription" SET "viewCount" = 99, "insertedAt" = '2001-01-01T00:00:00Z', "updatedAt" = '2001-01-01T00:00:00Z' WHERE "id" = ANY($1)`,
      [[a, c]],
    );

    const expectedB = [
      { reason: 'drift', id: b, column: 'status', stored: 'hacked', replayed: 'active' },
      { reason: 'drift', id: b, column: 'notes', stored: ['forged'], replayed: ['sk_2-first', 'sk_2-second'] },
    ];
    const expectedD = [
      { reason: 'drift', id: d, column: 'stripeKey', stored: 'sk_evil', replayed: 'sk_4' },
      { reason: 'drift', id: d, column: 'activatedAt', stored: new Date(activatedAtD.getTime() + 1000), replayed: activatedAtD },
      { reason: 'drift', id: d, column: 'version', stored: 7, replayed: 4 },
    ];
    expect(await es.verify(Subscription)).toEqual([...expectedB, ...expectedD]);

    // In batches, with progress.
    const progress: { processed: number; total: number }[] = [];
    expect(await es.verify(Subscription, { batchSize: 2, onProgress: (p) => progress.push(p) })).toEqual([...expectedB, ...expectedD]);
    expect(progress).toEqual([
      { processed: 2, total: 5 },
      { processed: 4, total: 5 },
      { processed: 5, total: 5 },
    ]);

    // One aggregate only.
    expect(await es.verify(Subscription, { id: d })).toEqual(expectedD);
    expect(await es.verify(Subscription, { id: a })).toEqual([]);
    const missing = await rejectionOf(es.verify(Subscription, { id: MISSING_ID }));
    expect(missing).toBeInstanceOf(AggregateNotFoundError);
    expect(missing.message).toBe(`Subscription ${MISSING_ID} does not exist`);

    // rebuildAll repairs exactly the two tampered rows; excluded columns keep their values.
    expect(await es.rebuildAll(Subscription)).toEqual({ processed: 5, total: 5, rebuilt: 2 });
    expect(await es.verify(Subscription)).toEqual([]);
    expect((await rawRow(a)).viewCount).toBe(99);
    expect((await rawRow(c)).viewCount).toBe(99);
    expect((await rawRow(d)).activatedAt.getTime()).toBe(activatedAtD.getTime());
  });
});

describe('rebuildAll', () => {
  beforeEach(truncate);

  async function tamper(id: number): Promise<void> {
    await dataSource.query(`UPDATE "subscription" SET "status" = 'hacked', "version" = 0 WHERE "id" = $1`, [id]);
  }

  test('works batch by batch over more aggregates than the batch size, reporting progress', async () => {
    const ids: number[] = [];
    for (let n = 1; n <= 7; n += 1) ids.push((await lifecycle(200 + n, `sk_all_${n}`)).id);
    await tamper(ids[0]);
    await tamper(ids[3]);
    await tamper(ids[6]);

    const calls: RebuildProgress[] = [];
    const result = await es.rebuildAll(Subscription, { batchSize: 2, onProgress: (p) => calls.push(p) });
    expect(calls).toEqual([
      { processed: 2, total: 7, rebuilt: 1 },
      { processed: 4, total: 7, rebuilt: 2 },
      { processed: 6, total: 7, rebuilt: 2 },
      { processed: 7, total: 7, rebuilt: 3 },
    ]);
    expect(result).toEqual({ processed: 7, total: 7, rebuilt: 3 });
    expect(await es.verify(Subscription)).toEqual([]);
    for (const id of [ids[0], ids[3], ids[6]]) {
      const row = await rawRow(id);
      expect(row.status).toBe('active');
      expect(row.version).toBe(4);
    }

    // Nothing left to do; a batch size dividing the total calls onProgress once per full batch.
    const again: RebuildProgress[] = [];
    expect(await es.rebuildAll(Subscription, { batchSize: 7, onProgress: (p) => again.push(p) })).toEqual({ processed: 7, total: 7, rebuilt: 0 });
    expect(again).toEqual([{ processed: 7, total: 7, rebuilt: 0 }]);

    const single: RebuildProgress[] = [];
    await es.rebuildAll(Subscription, { batchSize: 1, onProgress: (p) => single.push(p) });
    expect(single.map((p) => p.processed)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  test('leaves rows without events as they are', async () => {
    const { id } = await lifecycle(300, 'sk_mixed');
    const legacy = await legacyRow();
    await tamper(id);
    const before = await rawRow(legacy);
    expect(await es.rebuildAll(Subscription, { batchSize: 1 })).toEqual({ processed: 2, total: 2, rebuilt: 1 });
    expect(await rawRow(legacy)).toEqual(before);
    expect((await rawRow(id)).status).toBe('active');
  });

  test('of an empty table reports nothing processed', async () => {
    const calls: RebuildProgress[] = [];
    expect(await es.rebuildAll(Subscription, { batchSize: 2, onProgress: (p) => calls.push(p) })).toEqual({ processed: 0, total: 0, rebuilt: 0 });
    expect(calls).toEqual([]);
    expect(await es.verify(Subscription)).toEqual([]);
  });
});

describe('replay starts from the column defaults PostgreSQL gives a new row', () => {
  test('varchar and SQL-expression jsonb defaults (Subscription)', async () => {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 77 }));
    const id = created.aggregateId as number;
    const row = await rawRow(id);
    expect(row.status).toBe('pending');
    expect(row.notes).toEqual([]);

    const v1 = (await es.stateAt(Subscription, id, { version: 1 }))!;
    expect(v1.status).toBe('pending');
    expect(Array.isArray(v1.notes)).toBe(true);
    expect(v1.notes).toEqual([]);
    expect(v1.stripeKey).toBeNull();
    expect(v1.activatedAt).toBeNull();

    // apply spreads the replayed default: a string default would have produced characters.
    await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: await load(id), note: 'only' }));
    expect((await es.stateAt(Subscription, id, { version: 2 }))!.notes).toEqual(['only']);
    expect((await rawRow(id)).notes).toEqual(['only']);
    expect(await es.verify(Subscription, { id })).toEqual([]);
  });

  test('int and JSON-literal defaults (ReplayLedger)', async () => {
    const opened = await dataSource.manager.save(ReplayLedgerOpened.build({ owner: 'ann' }));
    const id = opened.aggregateId as number;
    const fresh = (await es.stateAt(ReplayLedger, id, { version: 1 }))!;
    expect(fresh).toBeInstanceOf(ReplayLedger);
    expect(pick(fresh, ['owner', 'state', 'balance', 'memos', 'version'])).toEqual({ owner: 'ann', state: 'open', balance: 0, memos: [], version: 1 });
    // The JSON default is a fresh copy in every replay.
    fresh.memos.push('mutated');
    expect((await es.stateAt(ReplayLedger, id, { version: 1 }))!.memos).toEqual([]);

    let ledger = await dataSource.manager.findOneByOrFail(ReplayLedger, { id });
    await dataSource.manager.save(ReplayLedgerCredited.build({ replayLedger: ledger, amount: 5, memo: 'five' }));
    ledger = await dataSource.manager.findOneByOrFail(ReplayLedger, { id });
    await dataSource.manager.save(ReplayLedgerCredited.build({ replayLedger: ledger, amount: 10, memo: 'ten' }));

    const replayed = (await es.stateAt(ReplayLedger, id, { version: 3 }))!;
    expect(replayed.balance).toBe(15); // a number from the start: not '0' + 5 + 10
    expect(replayed.memos).toEqual(['five', 'ten']);
    const [row] = await dataSource.query('SELECT * FROM "replay_ledger" WHERE "id" = $1', [id]);
    expect(pick(row, ['owner', 'state', 'balance', 'memos', 'version'])).toEqual({ owner: 'ann', state: 'open', balance: 15, memos: ['five', 'ten'], version: 3 });
    expect(await es.verify(ReplayLedger)).toEqual([]);
  });
});
