import { EventSourcing } from '../../src';
import { Order, OrderEvent, OrderPlaced } from '../processes/model';
import { childProcessHooks } from '../support/child-hooks';
import { recordFigure } from '../support/figures';
import { ChildApp, closeAndExpectExit, killChildren, ReliabilityDatabase, sharedRedisUrl, uniqueQueueName, type ChildMessage } from '../support/processes';

/**
 * Many writers in several OS processes appending to the same aggregates, each with the version it
 * loaded as expected version and retrying on conflict: the history stays contiguous, the row
 * equals its replay, every write a caller was told committed is there (and nothing else), and a
 * caller only ever sees ConcurrencyError.
 */

let db: ReliabilityDatabase | undefined;
let es: EventSourcing | undefined;

childProcessHooks();

afterEach(async () => {
  await killChildren();
  await es?.close();
  await db?.close();
  es = undefined;
  db = undefined;
});

interface WriterReport {
  writer: string;
  committed: Record<string, number>;
  conflicts: number;
  gaveUp: number;
}

/** Orders with one OrderPlaced each (version 1), written by this process. */
async function placeOrders(count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i += 1) ids.push((await es!.append(OrderPlaced.build({ number: i }))).aggregateId);
  return ids;
}

/**
 * Starts `processes` children, then lets each run `writersPerProcess` concurrent writers of
 * `count` events at once; returns their replies.
 */
async function contend(name: string, aggregateIds: number[], processes: number, writersPerProcess: number, count: number): Promise<{ children: ChildApp[]; replies: ChildMessage[] }> {
  const env = { DATABASE_URL: db!.url, REDIS_URL: sharedRedisUrl(), QUEUE_NAME: uniqueQueueName(name) };
  const children = await Promise.all(Array.from({ length: processes }, (_, index) => ChildApp.start(`${name}-${index + 1}`, 'app', env, 30_000)));
  const replies = await Promise.all(
    children.map((child) => child.request({ cmd: 'contend', aggregateIds, count, concurrency: writersPerProcess, maxRetries: 1000 }, 90_000)),
  );
  await Promise.all(children.map(closeAndExpectExit));
  return { children, replies };
}

/** Committed OrderNoted events per `writer/aggregate`, counted in the events table. */
async function committedInDatabase(): Promise<Record<string, number>> {
  const table = db!.eventsTable;
  const aggregateColumn = db!.dataSource.getMetadata(OrderEvent).findColumnWithPropertyName('aggregateId')!.databaseName;
  const rows: Array<{ key: string; count: number }> = await db!.dataSource.query(
    `SELECT (data->>'writer') || '/' || ${aggregateColumn} AS key, count(*)::int AS count FROM ${table} WHERE type = 'Order.Noted' GROUP BY 1`,
  );
  return Object.fromEntries(rows.map((row) => [row.key, row.count]));
}

/** What the writers reported as committed, per `writer/aggregate`. */
function committedReported(replies: ChildMessage[]): Record<string, number> {
  const committed: Record<string, number> = {};
  for (const reply of replies) {
    for (const writer of reply.writers as WriterReport[]) {
      for (const [aggregateId, count] of Object.entries(writer.committed)) committed[`${writer.writer}/${aggregateId}`] = count;
    }
  }
  return committed;
}

/**
 * Per aggregate: versions 1..N without a gap or a double, N = 1 + the notes reported committed to
 * it; the row at version N with the notes count and last writer its events say.
 */
async function expectContiguousHistories(aggregateIds: number[], reported: Record<string, number>): Promise<void> {
  const table = db!.eventsTable;
  const aggregateColumn = db!.dataSource.getMetadata(OrderEvent).findColumnWithPropertyName('aggregateId')!.databaseName;
  for (const id of aggregateIds) {
    const notes = Object.entries(reported)
      .filter(([key]) => key.endsWith(`/${id}`))
      .reduce((sum, [, count]) => sum + count, 0);
    const rows: Array<{ version: number; writer: string | null }> = await db!.dataSource.query(
      `SELECT version, data->>'writer' AS writer FROM ${table} WHERE ${aggregateColumn} = $1 ORDER BY version, id`,
      [id],
    );
    expect(rows.map((row) => row.version)).toEqual(Array.from({ length: notes + 1 }, (_, index) => index + 1));
    const order = await db!.dataSource.getRepository(Order).findOneByOrFail({ id });
    expect({ version: order.version, notes: order.notes, lastWriter: order.lastWriter }).toEqual({
      version: notes + 1,
      notes,
      lastWriter: notes > 0 ? rows[rows.length - 1].writer : null,
    });
  }
}

/** The checks both tests share; returns the totals for the figures. */
async function expectConsistentOutcome(aggregateIds: number[], children: ChildApp[], replies: ChildMessage[], planned: number) {
  const writers = replies.flatMap((reply) => reply.writers as WriterReport[]);
  const reported = committedReported(replies);
  const committed = Object.values(reported).reduce((sum, count) => sum + count, 0);
  const conflicts = writers.reduce((sum, writer) => sum + writer.conflicts, 0);

  // Callers: only conflicts, each as documented, and every write eventually committed.
  expect(replies.map((reply) => reply.anomalies)).toEqual(replies.map(() => []));
  // Every process lost races (so it saw the error class at all) and saw no other class.
  for (const reply of replies) expect(Object.keys(reply.errors)).toEqual(['ConcurrencyError']);
  expect(writers.map((writer) => writer.gaveUp)).toEqual(writers.map(() => 0));
  expect(committed).toBe(planned);

  // The database: the same writes per writer and aggregate, nothing more; histories contiguous;
  // each row equals its replay.
  const found = await committedInDatabase();
  expect(found).toEqual(reported);
  const rows = Object.values(found).reduce((sum, count) => sum + count, 0);
  await expectContiguousHistories(aggregateIds, reported);
  expect(await es!.verify(Order)).toEqual([]);
  for (const child of children) expect(child.errors).toEqual([]);
  return { writers: writers.length, committed, rows, conflicts };
}

function recordContention(processes: number, totals: { writers: number; committed: number; rows: number; conflicts: number }): void {
  recordFigure('writers', totals.writers);
  recordFigure('writer processes', processes);
  recordFigure('events written', totals.rows);
  recordFigure('conflicts retried', totals.conflicts);
  recordFigure('events lost', totals.committed - totals.rows);
}

test('64 writers in 2 processes append 5 events each to one order: versions contiguous, row equals replay, only ConcurrencyError seen', async () => {
  db = await ReliabilityDatabase.create('contend_one');
  es = await EventSourcing.attach(db.dataSource, { createSchema: false });
  const aggregateIds = await placeOrders(1);

  const { children, replies } = await contend('contend-one', aggregateIds, 2, 32, 5);
  const totals = await expectConsistentOutcome(aggregateIds, children, replies, 64 * 5);
  expect(totals.writers).toBe(64);
  // The processes' writes interleave in the one history: they raced each other, not only themselves.
  const writerPids: Array<{ pid: string }> = await db.dataSource.query(
    `SELECT split_part(data->>'writer', '-', 1) AS pid FROM ${db.eventsTable} WHERE type = 'Order.Noted' ORDER BY version`,
  );
  const switches = writerPids.filter((row, index) => index > 0 && row.pid !== writerPids[index - 1].pid).length;
  expect(switches).toBeGreaterThanOrEqual(2);
  recordContention(2, totals);
}, 120_000);

test('16 writers in 2 processes append 10 events each to 8 orders picked at random: every order consistent', async () => {
  db = await ReliabilityDatabase.create('contend_many');
  es = await EventSourcing.attach(db.dataSource, { createSchema: false });
  const aggregateIds = await placeOrders(8);

  const { children, replies } = await contend('contend-many', aggregateIds, 2, 8, 10);
  const totals = await expectConsistentOutcome(aggregateIds, children, replies, 16 * 10);
  expect(totals.writers).toBe(16);
  // Spread over the orders: each received notes from several writers.
  const reported = committedReported(replies);
  for (const id of aggregateIds) expect(Object.keys(reported).filter((key) => key.endsWith(`/${id}`)).length).toBeGreaterThan(1);
  recordContention(2, totals);
}, 120_000);
