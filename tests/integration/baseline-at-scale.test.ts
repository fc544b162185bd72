import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { EventSourcing, type BaselineProgress } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { LegacyAccount, legacyEntities } from '../support/legacy-models';

/**
 * es.baseline on a table of real size, with another connection locking its rows throughout: one
 * short transaction per batch (a writer never waits longer than one batch), every byte of every
 * row kept, verify clean afterwards, and a second run that finds nothing to do.
 */
const ROWS = 10_000;
const BATCH = 500;
const CUSTOMERS = 40;
// The writer and the baseline share this process's event loop, and the machine has two busy
// cores: a lock granted at a batch's commit may be seen a little after the next onProgress.
const MARGIN_MS = 250;
const APPLICATION = 'baseline_at_scale';
// The baseline of 10,000 rows took 11 s here with the cores half free, over a minute with other suites on them.
const TIMEOUT_MS = 180_000;

let dataSource: DataSource;
let es: EventSourcing;
let url: string;

beforeAll(async () => {
  // Its own application_name, so pg_stat_activity shows the baseline's connections apart from the writer's.
  dataSource = await testDataSource('baseline_at_scale', legacyEntities, { applicationName: APPLICATION });
  url = (dataSource.options as { url: string }).url;
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

/**
 * Rows as years of CRUD left them, written with plain SQL: NULLs in every nullable column,
 * millisecond timestamps, numerics with a trailing zero and negatives, bigints past 2^53 (up to
 * the largest int8), nested jsonb with non-ASCII text, and a foreign key to another table.
 */
async function insertCrudRows(): Promise<number[]> {
  await dataSource.query(`INSERT INTO legacy_customer (name) SELECT 'customer ' || c FROM generate_series(1, $1::int) AS c`, [CUSTOMERS]);
  const rows: { id: number }[] = await dataSource.query(
    `INSERT INTO legacy_account (name, nickname, balance, "externalRef", "closedAt", settings, "customerId", "createdAt", "updatedAt")
     SELECT 'account ' || n || CASE WHEN n % 13 = 0 THEN ' «ünïcødé» 🚀' ELSE '' END,
            CASE WHEN n % 3 = 0 THEN NULL ELSE 'nick ' || n END,
            CASE WHEN n % 11 = 0 THEN -(n * 0.1)::numeric(12,2) ELSE (1234.5 + n * 0.01)::numeric(12,2) END,
            CASE WHEN n = $1 THEN 9223372036854775807 WHEN n % 2 = 0 THEN (9007199254740993 + n * 7)::bigint ELSE NULL END,
            CASE WHEN n % 4 = 0 THEN timestamptz '2020-02-29 12:34:56.789+00' + n * interval '1 day 0.001 seconds' ELSE NULL END,
            CASE WHEN n % 17 = 0 THEN '{}'::jsonb
                 ELSE jsonb_build_object('n', n, 'tags', jsonb_build_array('a', n, NULL), 'nested', jsonb_build_object('plan', 'gold', 'note', 'ünïcødé "quoted"')) END,
            CASE WHEN n % 5 = 0 THEN NULL ELSE 1 + n % $2::int END,
            timestamptz '2015-06-01 00:00:00.123+00' + n * interval '1 hour 0.007 seconds',
            timestamptz '2019-01-01 00:00:00.456+00' + n * interval '0.013 seconds'
     FROM generate_series(1, $1::int) AS n ORDER BY n RETURNING id`,
    [ROWS, CUSTOMERS],
  );
  return rows.map((row) => row.id);
}

/** Each row as PostgreSQL prints it, by id: what "byte-identical" is checked against. */
async function rowTexts(): Promise<Map<number, string>> {
  const rows: { id: number; json: string }[] = await dataSource.query(`SELECT id, row_to_json(t)::text AS json FROM legacy_account t ORDER BY id`);
  return new Map(rows.map((row) => [row.id, row.json]));
}

/** The single value a `SELECT count(*) ...` returns. */
async function count(sql: string): Promise<number> {
  const [row] = await dataSource.query(sql);
  return Number(Object.values(row)[0]);
}

/** A loop until `stop()` resolves it; the caller awaits `done` for its figures. */
function loop<T>(body: () => Promise<void>, result: () => T): { stop: () => void; done: Promise<T> } {
  let running = true;
  const done = (async () => {
    // Bounded below the test's timeout, so a loop whose stop never comes ends by itself.
    const deadline = Date.now() + TIMEOUT_MS - 10_000;
    while (running && Date.now() < deadline) await body();
    return result();
  })();
  return { stop: () => (running = false), done };
}

test(`${ROWS} CRUD rows: baseline in batches of ${BATCH} beside a writer that locks rows, every byte kept, verify clean, a second run writes nothing`, async () => {
  const ids = await insertCrudRows();
  expect(ids).toHaveLength(ROWS);
  const before = await rowTexts();
  // Sanity of the data itself: the edge values really are in the table.
  expect(await count(`SELECT count(*) FROM legacy_account WHERE "externalRef" > 9007199254740992`)).toBe(ROWS / 2);
  expect(await count(`SELECT count(*) FROM legacy_account WHERE balance::text LIKE '%0' AND balance > 0`)).toBeGreaterThan(100);
  expect(await count(`SELECT count(*) FROM legacy_account WHERE nickname IS NULL AND "customerId" IS NULL AND "closedAt" IS NULL`)).toBeGreaterThan(100);

  const waiting = await es.verify(LegacyAccount);
  expect(waiting).toHaveLength(ROWS);
  expect(waiting.every((mismatch) => mismatch.reason === 'noEvents' && mismatch.column === 'version' && mismatch.stored === 0)).toBe(true);
  // Batches come in key order, rows within a batch in whatever order PostgreSQL reads them.
  expect(waiting.map((mismatch) => mismatch.id as number).sort((a, b) => a - b)).toEqual(ids);

  // The writer: another connection taking row locks in a loop, half of them on rows of the batch
  // being written (which it must wait for), half anywhere (which must be free between batches).
  const writer = new Client({ connectionString: url, application_name: `${APPLICATION}_writer` });
  const monitor = new Client({ connectionString: url, application_name: `${APPLICATION}_monitor` });
  await Promise.all([writer.connect(), monitor.connect()]);
  try {
    await writer.query(`SET lock_timeout = '20s'`);
    let processed = 0;
    const waits: number[] = [];
    let lastRequest = 0;
    const writing = loop(
      async () => {
        const index = waits.length % 2 === 0 ? Math.min(ROWS - 1, processed + Math.floor(Math.random() * BATCH)) : Math.floor(Math.random() * ROWS);
        await writer.query('BEGIN');
        const started = performance.now();
        lastRequest = started;
        const locked = await writer.query('SELECT id FROM legacy_account WHERE id = $1 FOR UPDATE', [ids[index]]);
        waits.push(performance.now() - started);
        await writer.query('COMMIT');
        if (locked.rowCount !== 1) throw new Error(`row ${ids[index]} not found`);
      },
      () => waits,
    );
    // The oldest open transaction of the baseline's connections, sampled all along.
    let oldestTransactionMs = 0;
    const transactions = new Set<string>();
    const monitoring = loop(
      async () => {
        const rows: { pid: number; started: string; age: number }[] = (
          await monitor.query(
            `SELECT pid, xact_start::text AS started, EXTRACT(EPOCH FROM clock_timestamp() - xact_start) * 1000 AS age
             FROM pg_stat_activity WHERE application_name = $1 AND xact_start IS NOT NULL`,
            [APPLICATION],
          )
        ).rows;
        for (const row of rows) {
          oldestTransactionMs = Math.max(oldestTransactionMs, Number(row.age));
          transactions.add(`${row.pid}/${row.started}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      () => ({ oldestTransactionMs, transactions: transactions.size }),
    );

    const progress: BaselineProgress[] = [];
    const marks: number[] = [];
    const started = performance.now();
    let result;
    try {
      result = await es.baseline(LegacyAccount, {
        batchSize: BATCH,
        onProgress: (p) => {
          marks.push(performance.now());
          progress.push(p);
          processed = p.processed;
        },
      });
    } finally {
      writing.stop();
      monitoring.stop();
    }
    const elapsed = performance.now() - started;
    const [writerWaits, sampled] = await Promise.all([writing.done, monitoring.done]);

    expect(result).toEqual({ processed: ROWS, baselined: ROWS });
    expect(progress).toEqual(Array.from({ length: ROWS / BATCH }, (_, i) => ({ processed: (i + 1) * BATCH, total: ROWS, baselined: (i + 1) * BATCH })));
    // A batch's duration: from the previous progress report (or the start) to its own.
    const batches = marks.map((mark, i) => mark - (i === 0 ? started : marks[i - 1]));
    const longestBatch = Math.max(...batches);
    const longestWait = Math.max(...writerWaits);
    // The writer really ran throughout, and really waited for batches.
    expect(writerWaits.length).toBeGreaterThan(ROWS / BATCH);
    expect(lastRequest).toBeGreaterThanOrEqual(marks[marks.length - 2]);
    expect(writerWaits.filter((wait) => wait > 5).length).toBeGreaterThan(0);
    expect(longestWait).toBeLessThanOrEqual(longestBatch + MARGIN_MS);
    expect(sampled.transactions).toBeGreaterThan(1);
    expect(sampled.oldestTransactionMs).toBeLessThanOrEqual(longestBatch + MARGIN_MS);

    // One transaction per batch, exactly: the events of a transaction share its xmin, and each
    // transaction holds the next BATCH rows in key order.
    const groups: { events: number; first: number; last: number }[] = await dataSource.query(
      `SELECT count(*)::int AS events, min(legacy_account_id) AS first, max(legacy_account_id) AS last
       FROM legacy_account_events GROUP BY xmin::text ORDER BY min(legacy_account_id)`,
    );
    expect(groups).toEqual(Array.from({ length: ROWS / BATCH }, (_, i) => ({ events: BATCH, first: ids[i * BATCH], last: ids[i * BATCH + BATCH - 1] })));

    expect(await count(`SELECT count(*) FROM legacy_account_events`)).toBe(ROWS);
    // One baseline per row, version 1, dated at the row's creation.
    expect(
      await count(
        `SELECT count(*) FROM legacy_account_events e JOIN legacy_account a ON a.id = e.legacy_account_id
         WHERE e.type = 'LegacyAccount.Imported' AND e.version = 1 AND e.created_at = a."createdAt" AND a.version = 1`,
      ),
    ).toBe(ROWS);
    expect(await es.verify(LegacyAccount)).toEqual([]);

    const after = await rowTexts();
    const changed: string[] = [];
    for (const [id, text] of before) {
      // The version is masked: it is the one column the baseline may change, from 0 to 1.
      if (text.split('"version":0').length !== 2) throw new Error(`row ${id} does not print "version":0 exactly once: ${text}`);
      if (after.get(id) !== text.replace('"version":0', '"version":1')) changed.push(`${id}: ${text} -> ${after.get(id)}`);
    }
    expect(after.size).toBe(ROWS);
    expect(changed.slice(0, 5)).toEqual([]);

    expect(await es.baseline(LegacyAccount, { batchSize: BATCH })).toEqual({ processed: 0, baselined: 0 });
    expect(await count(`SELECT count(*) FROM legacy_account_events`)).toBe(ROWS);

    recordFigure('rows baselined', ROWS);
    recordFigure('baseline rows/s', Math.round((ROWS / elapsed) * 1000), 'rows/s');
    recordFigure('longest writer wait', Math.round(longestWait), 'ms');
    recordFigure('longest batch', Math.round(longestBatch), 'ms');
    console.log(
      `baseline of ${ROWS} rows: ${Math.round(elapsed)} ms; batches ${Math.round(Math.min(...batches))}-${Math.round(longestBatch)} ms; ` +
        `writer: ${writerWaits.length} locks, longest wait ${Math.round(longestWait)} ms, ${writerWaits.filter((wait) => wait > 5).length} over 5 ms; ` +
        `oldest transaction seen ${Math.round(sampled.oldestTransactionMs)} ms over ${sampled.transactions} transactions`,
    );
  } finally {
    await Promise.all([writer.end(), monitor.end()]);
  }
}, TIMEOUT_MS);
