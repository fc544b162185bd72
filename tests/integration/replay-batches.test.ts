import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Column, Entity, EventSubscriber, PrimaryGeneratedColumn, type DataSource, type EntitySubscriberInterface } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType, UsageError } from 'typeorm-event-sourcing';
import { EventReader } from '../../src/replay/event-reader';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';

/**
 * Replays read events a batch at a time (`eventBatchSize`, 5000 by default), whatever the number
 * of aggregates per page. `digest` folds the amounts in order, so an event replayed twice, left
 * out or out of order across a batch boundary shows as a wrong digest.
 */
@Aggregate({ directWrites: 'allow' })
@Entity()
class Tally {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) digest!: number;
  @Column({ type: 'int', default: 0 }) count!: number;
  @Column({ type: 'timestamptz', precision: 3, nullable: true }) lastAt!: Date | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Tally)
abstract class TallyEvent extends AggregateEvent<Tally, 'tally'> {}

const PRIME = 1_000_003;

@EventType('Tally.Opened', { creates: true })
class TallyOpened extends TallyEvent {
  @Data() start!: number;
  apply(tally: Tally): Tally {
    tally.digest = this.start;
    tally.count = 1;
    tally.lastAt = this.createdAt;
    return tally;
  }
}

@EventType('Tally.Added')
class TallyAdded extends TallyEvent {
  @Data() amount!: number;
  @Data({ optional: true }) note?: string;
  @Data({ optional: true, type: () => Date }) at?: Date | null;
  apply(tally: Tally): Tally {
    tally.digest = (tally.digest * 31 + this.amount) % PRIME;
    tally.count += 1;
    tally.lastAt = this.createdAt;
    return tally;
  }
}

/** An event class with a column of its own (single-table inheritance adds it to the events table). */
@EventType('Tally.Weighed')
class TallyWeighed extends TallyEvent {
  @Column({ type: 'numeric', precision: 10, scale: 3, nullable: true }) weight?: string | null;
  apply(tally: Tally): Tally {
    tally.count += 1;
    return tally;
  }
}

/** TypeORM hands every loaded entity to afterLoad subscribers; replays must do the same. */
const loaded: AggregateEvent[] = [];
@EventSubscriber()
class LoadRecorder implements EntitySubscriberInterface<TallyEvent> {
  listenTo() {
    return TallyEvent;
  }
  afterLoad(entity: TallyEvent): void {
    loaded.push(entity);
  }
}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('replay_batches', [Tally, TallyEvent, TallyOpened, TallyAdded, TallyWeighed], { subscribers: [LoadRecorder] });
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

afterEach(() => jest.restoreAllMocks());

/** Every array of events a reader method yields during the test, in order. */
function recordBatches(method: 'eventsOf' | 'historyOf'): AggregateEvent[][] {
  const batches: AggregateEvent[][] = [];
  const original = EventReader.prototype[method] as (...args: unknown[]) => AsyncGenerator<AggregateEvent[]>;
  jest.spyOn(EventReader.prototype, method).mockImplementation(async function* (this: EventReader, ...args: unknown[]) {
    for await (const batch of original.apply(this, args)) {
      batches.push(batch);
      yield batch;
    }
  } as never);
  return batches;
}

/** The state the events produce, computed here from the amounts rather than by the library. */
function expectedTally(start: number, amounts: readonly number[], lastAt: Date) {
  let digest = start;
  for (const amount of amounts) digest = (digest * 31 + amount) % PRIME;
  return { digest, count: amounts.length + 1, lastAt, version: amounts.length + 1 };
}

async function row(id: number): Promise<Record<string, unknown>> {
  const [stored] = await dataSource.query('SELECT digest, count, "lastAt", version FROM tally WHERE id = $1', [id]);
  return stored;
}

/**
 * A tally of `length` events written with SQL (the write path would take minutes for thousands),
 * its row left at version 0: events Opened(5), then Added((v * 7) % 101), a millisecond apart.
 */
async function insertLongTally(length: number, base: Date): Promise<{ id: number; amounts: number[] }> {
  const [{ id }] = await dataSource.query('INSERT INTO tally DEFAULT VALUES RETURNING id');
  await dataSource.query(
    `INSERT INTO tally_events (tally_id, version, type, data, metadata, created_at)
     SELECT $1, v, CASE WHEN v = 1 THEN 'Tally.Opened' ELSE 'Tally.Added' END,
       CASE WHEN v = 1 THEN jsonb_build_object('start', 5) ELSE jsonb_build_object('amount', (v * 7) % 101) END,
       jsonb_build_object('v', v), $2::timestamptz + v * interval '1 millisecond'
     FROM generate_series(1, $3::int) v`,
    [id, base, length],
  );
  const amounts = Array.from({ length: length - 1 }, (_, index) => ((index + 2) * 7) % 101);
  return { id, amounts };
}

async function writeTally(amounts: readonly number[]): Promise<number> {
  const opened = await dataSource.manager.save(TallyOpened.build({ start: 5 }));
  const tally = await dataSource.manager.findOneByOrFail(Tally, { id: opened.aggregateId });
  for (const amount of amounts) await dataSource.manager.save(TallyAdded.build({ tally, amount }));
  return tally.id;
}

test('the replay sees the events TypeORM loads: same classes, values, key order, and afterLoad subscribers called', async () => {
  const tally = await dataSource.manager.findOneByOrFail(Tally, { id: (await dataSource.manager.save(TallyOpened.build({ start: 3 }))).aggregateId });
  // Incompressible, so that it is stored larger than a row of a hundred events may hold: read alone.
  const large = randomBytes(24_000).toString('base64');
  await dataSource.manager.save(TallyAdded.build({ tally, amount: 1, note: 'ünïcødé ✓ "quoted" \\ back', metadata: { by: 'test', nested: { list: [1, 'two', null] } } }));
  await dataSource.manager.save(TallyAdded.build({ tally, amount: 2, note: large, at: new Date('1969-07-20T20:17:40.123Z') }));
  const weighed = TallyWeighed.build({ tally });
  weighed.weight = '12.500';
  await dataSource.manager.save(weighed);
  await dataSource.manager.save(TallyAdded.build({ tally, amount: 3 }));
  // Written behind the library's back: a time before 1970, with the millisecond precision kept.
  await dataSource.query(
    `INSERT INTO tally_events (tally_id, version, type, data, metadata, created_at) VALUES ($1, 6, 'Tally.Added', '{"amount": 4}', '{}', '1969-12-31T23:59:59.877Z')`,
    [tally.id],
  );
  await dataSource.query(
    `INSERT INTO tally_events (tally_id, version, type, data, metadata, created_at) VALUES ($1, 7, 'Tally.Weighed', '{}', '{}', '2999-01-01T00:00:00.001Z')`,
    [tally.id],
  );

  loaded.length = 0;
  const found = await dataSource.manager.find(TallyEvent, { where: { aggregateId: tally.id }, order: { version: 'ASC' } });
  expect(loaded).toEqual(found);
  expect(found.map((event) => event.constructor)).toEqual([TallyOpened, TallyAdded, TallyAdded, TallyWeighed, TallyAdded, TallyAdded, TallyWeighed]);

  for (const [method, replay] of [
    ['historyOf', () => es.stateAt(Tally, tally.id, { version: 7 })],
    ['eventsOf', () => es.verify(Tally, { id: tally.id })],
  ] as const) {
    const batches = recordBatches(method);
    loaded.length = 0;
    await replay();
    jest.restoreAllMocks();
    const replayed = batches.flat();
    expect(replayed).toHaveLength(7);
    replayed.forEach((event, index) => {
      expect(event).toStrictEqual(found[index]);
      expect(Object.keys(event)).toEqual(Object.keys(found[index]));
      expect(Object.getPrototypeOf(event)).toBe(Object.getPrototypeOf(found[index]));
    });
    expect(replayed.map((event) => event.createdAt.getTime())).toEqual(found.map((event) => event.createdAt.getTime()));
    expect(replayed[5].createdAt.toISOString()).toBe('1969-12-31T23:59:59.877Z');
    expect((replayed[2] as TallyAdded).note).toBe(large);
    expect((replayed[2] as TallyAdded).at).toEqual(new Date('1969-07-20T20:17:40.123Z'));
    expect((replayed[3] as TallyWeighed).weight).toBe('12.500');
    expect(typeof replayed[0].id).toBe('number');
    expect(typeof replayed[0].position).toBe('number');
    expect(typeof replayed[0].txId).toBe('number');
    expect(loaded).toEqual(replayed);
  }
  // The other tests verify every row.
  await es.rebuild(Tally, tally.id);
});

test('a batch boundary inside an aggregate history: small batches verify and rebuild every row as one batch does', async () => {
  const ids = [await writeTally([4, 4, 4, 4, 4, 4, 4, 4, 4]), await writeTally([1, 2]), await writeTally([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7])];
  const expected = await Promise.all(ids.map((id) => row(id)));
  await dataSource.query('UPDATE tally SET digest = 0, count = 0, version = 0 WHERE id = ANY($1)', [ids]);

  for (const eventBatchSize of [7, 1]) {
    const batches = recordBatches('eventsOf');
    const mismatches = await es.verify(Tally, { batchSize: 2, eventBatchSize });
    jest.restoreAllMocks();
    expect(mismatches.filter((mismatch) => ids.includes(mismatch.id as number)).map((mismatch) => [mismatch.id, mismatch.column])).toEqual(
      ids.flatMap((id) => [[id, 'digest'], [id, 'count'], [id, 'version']]),
    );
    expect(Math.max(...batches.map((batch) => batch.length))).toBe(eventBatchSize);
    // Some aggregate's events go on in the next batch.
    const split = batches.some((batch, index) => index > 0 && batches[index - 1].at(-1)!.aggregateId === batch[0].aggregateId);
    expect(split).toBe(true);
  }

  const batches = recordBatches('eventsOf');
  const progress = await es.rebuildAll(Tally, { batchSize: 2, eventBatchSize: 7 });
  jest.restoreAllMocks();
  expect(progress.rebuilt).toBe(3);
  expect(Math.max(...batches.map((batch) => batch.length))).toBe(7);
  expect(await Promise.all(ids.map((id) => row(id)))).toEqual(expected);
  expect(await es.verify(Tally, { eventBatchSize: 3 })).toEqual([]);
});

test('an aggregate of more events than a batch verifies, rebuilds and replays in order across the batches', async () => {
  const base = new Date('2024-03-01T00:00:00.000Z');
  const before = await writeTally([1, 2]);
  const { id, amounts } = await insertLongTally(12_000, base);
  const after = await writeTally([9, 8, 7]);
  const expected = expectedTally(5, amounts, new Date(base.getTime() + 12_000));

  const rebuildBatches = recordBatches('eventsOf');
  // Default sizes: 5000 events a batch, 500 aggregates a page.
  const progress = await es.rebuildAll(Tally);
  jest.restoreAllMocks();
  expect(progress.rebuilt).toBeGreaterThanOrEqual(1);
  expect(await row(id)).toEqual(expected);
  expect(Math.max(...rebuildBatches.map((batch) => batch.length))).toBeLessThanOrEqual(5000);
  const longBatches = rebuildBatches.filter((batch) => batch.some((event) => event.aggregateId === id));
  expect(longBatches.length).toBeGreaterThanOrEqual(3);
  expect(longBatches.flat().filter((event) => event.aggregateId === id).map((event) => event.version)).toEqual(
    Array.from({ length: 12_000 }, (_, index) => index + 1),
  );

  expect(await es.verify(Tally)).toEqual([]);
  await dataSource.query('UPDATE tally SET digest = digest + 1 WHERE id = $1', [id]);
  expect(await es.verify(Tally)).toEqual([{ reason: 'drift', id, column: 'digest', stored: expected.digest + 1, replayed: expected.digest }]);
  expect((await es.rebuild(Tally, id)).digest).toBe(expected.digest);
  expect(await es.verify(Tally, { id })).toEqual([]);

  // stateAt reads one aggregate by version, a batch at a time too: 5000 is a batch boundary.
  const historyBatches = recordBatches('historyOf');
  for (const version of [4999, 5000, 5001, 12_000]) {
    const state = (await es.stateAt(Tally, id, { version }))!;
    expect(state).toMatchObject(expectedTally(5, amounts.slice(0, version - 1), new Date(base.getTime() + version)));
  }
  const at = (await es.stateAt(Tally, id, { at: new Date(base.getTime() + 7777) }))!;
  expect(at).toMatchObject(expectedTally(5, amounts.slice(0, 7776), new Date(base.getTime() + 7777)));
  expect(Math.max(...historyBatches.map((batch) => batch.length))).toBeLessThanOrEqual(5000);
  // A full batch is followed by another read, unless it reached the version asked for.
  expect(historyBatches.map((batch) => batch.length)).toEqual([4999, 5000, 5000, 1, 5000, 5000, 2000, 5000, 2777]);

  for (const other of [before, after]) expect(await es.verify(Tally, { id: other })).toEqual([]);
});

test('eventBatchSize must be a positive integer', async () => {
  for (const invalid of [0, -1, 1.5, Number.NaN, '5']) {
    const verifying = await rejectionOf(es.verify(Tally, { eventBatchSize: invalid as number }));
    expect(verifying).toBeInstanceOf(UsageError);
    expect(verifying.message).toBe(`verify(Tally): eventBatchSize must be a positive integer, got ${String(invalid)}`);
    const rebuilding = await rejectionOf(es.rebuildAll(Tally, { eventBatchSize: invalid as number }));
    expect(rebuilding).toBeInstanceOf(UsageError);
    expect(rebuilding.message).toBe(`rebuildAll(Tally): eventBatchSize must be a positive integer, got ${String(invalid)}`);
  }
});

// Last: the row it writes makes every later verify of the table fail.
test('verify reads two batches of rows at a time; one failing rejects the call once the other has finished', async () => {
  const failing = await writeTally([1]);
  // The batch after the failing one is long, so it is still being read when the failure comes.
  const { id: long } = await insertLongTally(20_000, new Date('2024-05-01T00:00:00.000Z'));
  const [{ id: eventId }] = await dataSource.query(
    `INSERT INTO tally_events (tally_id, version, type, data, metadata, created_at) VALUES ($1, 3, 'Tally.Nope', '{}', '{}', now()) RETURNING id`,
    [failing],
  );
  expect(long).toBeGreaterThan(failing);
  const pool = (dataSource.driver as unknown as { master: { totalCount: number; idleCount: number } }).master;
  const progress: number[] = [];
  let busyAtRejection = -1;
  const error = await es.verify(Tally, { batchSize: 1, onProgress: (p) => progress.push(p.processed) }).then(
    () => undefined,
    (rejection: Error) => {
      busyAtRejection = pool.totalCount - pool.idleCount;
      return rejection;
    },
  );
  expect(error?.message).toBe(`tally_events row ${eventId} has type 'Tally.Nope', which no @EventType class registers`);
  // No connection of the call is still in use: the batch running beside the failing one ended first.
  expect(busyAtRejection).toBe(0);
  // Batches before the failing one were reported, in order; none from it on.
  const [{ before }] = await dataSource.query('SELECT count(*)::int AS before FROM tally WHERE id < $1', [failing]);
  expect(progress).toEqual(Array.from({ length: before }, (_, index) => index + 1));
});
