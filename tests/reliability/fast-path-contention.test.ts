import { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { ConcurrencyError, Dispatcher, EventSourcing } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { sharedRedisUrl, uniqueQueueName } from '../support/processes';
import { StatementLog, writeShape } from '../support/statement-log';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Sixteen writers on one aggregate, each with an instance of its own loaded by TypeORM, so that
 * every write starts on the one-statement path and all but one miss: without an expected version
 * every write lands, in one contiguous history; with one, every caller gets its event or a
 * ConcurrencyError, and the history holds exactly the events callers were given. An async
 * reactor on a queue gets one outbox row and one run per written event, none for refused ones.
 */

const WRITERS = 16;
const tables = { aggregate: 'subscription', events: 'subscription_events' };
const queueName = uniqueQueueName('fast-path-contention');

const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;
/** Event ids the async reactor ran for, once per run. */
const runs: number[] = [];

beforeAll(async () => {
  // More connections than writers: every writer is in the database at once.
  dataSource = await testDataSource(`fast_path_contention_${process.pid}`, subscriptionEntities, { logger: log, logging: true, poolSize: WRITERS + 4 });
  const dispatcher = new Dispatcher().on(SubscriptionNoteAdded, { async: (event) => void runs.push(event.id), name: 'ContentionMailer' });
  es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: sharedRedisUrl(), name: queueName } });
  // Every outbox row that ever committed (they are deleted once their job is queued).
  await dataSource.query(`
    CREATE TABLE contention_outbox_log (event_id bigint NOT NULL, reactor text NOT NULL);
    CREATE FUNCTION contention_log_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO contention_outbox_log VALUES (NEW.event_id, NEW.reactor);
      RETURN NULL;
    END $$;
    CREATE TRIGGER contention_log_outbox AFTER INSERT ON es_outbox FOR EACH ROW EXECUTE FUNCTION contention_log_outbox();
  `);
  es.worker({ concurrency: 8 });
}, 60_000);

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  const url = new URL(sharedRedisUrl());
  const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port || 6379) } });
  await queue.obliterate({ force: true }).finally(() => queue.close());
});

async function createdId(userId: number): Promise<number> {
  return (await es.append(SubscriptionCreated.build({ userId }))).aggregateId;
}

/** Versions 1..last without a gap, the row at the last one with the notes of its events in order, equal to its replay. */
async function expectContiguous(id: number, last: number): Promise<Record<string, any>[]> {
  const rows = await eventRows(dataSource, id);
  expect(rows.map((row) => row.version)).toEqual(Array.from({ length: last }, (_, index) => index + 1));
  expect(await subscriptionRow(dataSource, id)).toMatchObject({ version: last, notes: rows.slice(1).map((row) => row.data.note) });
  expect(await es.verify(Subscription, { id })).toEqual([]);
  return rows;
}

/** The async reactor ran once per written event and the outbox had one row per written event; nothing else. */
async function expectOneJobPerEvent(eventIds: number[]): Promise<void> {
  await waitForReactors(es, { timeout: 30_000 });
  const sorted = [...eventIds].sort((a, b) => a - b);
  const logged: { id: number }[] = await dataSource.query(
    `SELECT event_id::float8 AS id FROM contention_outbox_log WHERE event_id = ANY($1::bigint[]) OR event_id > $2 ORDER BY event_id`,
    [sorted, sorted[0]],
  );
  expect(logged.map((row) => row.id)).toEqual(sorted);
  expect(runs.filter((id) => id >= sorted[0]).sort((a, b) => a - b)).toEqual(sorted);
  const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM es_outbox`);
  expect(count).toBe(0);
}

/** How many writes since `mark` read the row under its lock (after a miss, on a hot aggregate, or to refuse an expected version). */
function lockedWritesSince(mark: number): number {
  return writeShape(log.since(mark), tables).lockedReads.length;
}

test(`${WRITERS} writers without an expected version: every write lands, versions 1..${WRITERS + 1}, row equals replay`, async () => {
  const id = await createdId(1);
  const instances = await Promise.all(Array.from({ length: WRITERS }, () => loadSubscription(dataSource, id)));
  const mark = log.mark();

  const events = await Promise.all(instances.map((subscription, index) => es.append(SubscriptionNoteAdded.build({ subscription, note: `w${index}` }))));

  expect(events.map((event) => event.version).sort((a, b) => a - b)).toEqual(Array.from({ length: WRITERS }, (_, index) => index + 2));
  const rows = await expectContiguous(id, WRITERS + 1);
  expect(rows.slice(1).map((row) => Number(row.id)).sort((a, b) => a - b)).toEqual(events.map((event) => event.id).sort((a, b) => a - b));
  // Each caller's instance holds the row as its write left it.
  for (const [index, subscription] of instances.entries()) {
    expect(subscription.version).toBe(events[index].version);
    expect(subscription.notes.at(-1)).toBe(`w${index}`);
  }
  const locked = lockedWritesSince(mark);
  expect(locked).toBeLessThan(WRITERS);
  await expectOneJobPerEvent(events.map((event) => event.id));
  recordFigure('fast-path contention writers', WRITERS);
  recordFigure('fast-path contention events written', events.length);
  recordFigure('fast-path contention writes that read the row under its lock', locked);
});

test(`${WRITERS} writers, 4 events each, each keeping its instance: one contiguous history of ${WRITERS * 4 + 1} versions`, async () => {
  const id = await createdId(2);
  const instances = await Promise.all(Array.from({ length: WRITERS }, () => loadSubscription(dataSource, id)));
  const mark = log.mark();

  const written = await Promise.all(
    instances.map(async (subscription, writer) => {
      const events: SubscriptionNoteAdded[] = [];
      for (let round = 0; round < 4; round += 1) events.push(await es.append(SubscriptionNoteAdded.build({ subscription, note: `w${writer}r${round}` })));
      return events;
    }),
  );

  const events = written.flat();
  await expectContiguous(id, WRITERS * 4 + 1);
  // Per writer, its events in the order it wrote them.
  for (const own of written) expect(own.map((event) => event.version)).toEqual([...own.map((event) => event.version)].sort((a, b) => a - b));
  await expectOneJobPerEvent(events.map((event) => event.id));
  recordFigure('fast-path contention writers', WRITERS);
  recordFigure('fast-path contention events written', events.length);
  recordFigure('fast-path contention writes that read the row under its lock', lockedWritesSince(mark));
});

test(`${WRITERS} writers with the loaded version as expected version, 3 rounds: each gets its event or a ConcurrencyError, the history holds exactly the events given`, async () => {
  const id = await createdId(3);
  const succeeded: SubscriptionNoteAdded[] = [];
  let conflicts = 0;
  const mark = log.mark();

  for (let round = 0; round < 3; round += 1) {
    const outcomes = await Promise.allSettled(
      Array.from({ length: WRITERS }, async (_, writer) => {
        // Loads spread over a few milliseconds: some see versions others just wrote.
        await new Promise((resolve) => setTimeout(resolve, (writer * 7 + round * 3) % 20));
        const subscription = await loadSubscription(dataSource, id);
        const loaded = subscription.version;
        const before = structuredClone({ ...subscription, events: undefined });
        try {
          return await es.append(SubscriptionNoteAdded.build({ subscription, note: `r${round}w${writer}` }), { expectedVersion: loaded });
        } catch (error) {
          expect(error).toBeInstanceOf(ConcurrencyError);
          expect(error).toMatchObject({ aggregateType: 'Subscription', aggregateId: id, expectedVersion: loaded, retryable: false });
          expect((error as ConcurrencyError).actualVersion).toBeGreaterThan(loaded);
          // A refused write leaves the caller's instance as it was.
          expect({ ...subscription, events: undefined }).toEqual(before);
          throw error;
        }
      }),
    );
    const fulfilled = outcomes.filter((outcome): outcome is PromiseFulfilledResult<SubscriptionNoteAdded> => outcome.status === 'fulfilled');
    const rejected = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(rejected.every((outcome) => outcome.reason instanceof ConcurrencyError)).toBe(true);
    expect(fulfilled.length + rejected.length).toBe(WRITERS);
    expect(fulfilled.length).toBeGreaterThanOrEqual(1);
    succeeded.push(...fulfilled.map((outcome) => outcome.value));
    conflicts += rejected.length;
  }

  const rows = await expectContiguous(id, succeeded.length + 1);
  expect(rows.slice(1).map((row) => [Number(row.id), row.data.note])).toEqual(
    [...succeeded].sort((a, b) => a.version - b.version).map((event) => [event.id, event.note]),
  );
  await expectOneJobPerEvent(succeeded.map((event) => event.id));
  recordFigure('fast-path contention writers', WRITERS * 3);
  recordFigure('fast-path contention events written', succeeded.length);
  recordFigure('fast-path contention conflicts reported', conflicts);
  recordFigure('fast-path contention writes that read the row under its lock', lockedWritesSince(mark));
});
