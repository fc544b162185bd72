import type { DataSource } from 'typeorm';
import { EventSourcing } from '../../src';
import { LegacyAccount, legacyEntities } from '../support/legacy-models';
import { childProcessHooks } from '../support/child-hooks';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { onServer } from '../support/order-database';
import { ChildApp, type ChildMessage, waitFor } from '../support/processes';

/**
 * es.baseline SIGKILLed part-way, twice: once stopped inside a batch's open transaction with part
 * of the batch written, once wherever it happens to be. After each kill the table holds whole
 * batches only (each row either without events at version 0, or at version 1 with exactly one
 * baseline equal to the row); a new run resumes with the rows left, baselines each exactly once,
 * and verify is clean.
 */
const ROWS = 2_000;
const BATCH = 50;
// Five batches committed, the sixth stopped after 20 of its events: a batch half written.
const COMMITTED_BEFORE_PAUSE = 5 * BATCH;
const PAUSE_AT = COMMITTED_BEFORE_PAUSE + 20;

let dataSource: DataSource;
let es: EventSourcing;
let url: string;

childProcessHooks({
  setup: async () => {
    // The pid keeps two runs of the suite at once (a shared checkout) off each other's database.
    dataSource = await testDataSource(`reliability_baseline_resume_${process.pid}`, legacyEntities);
    url = (dataSource.options as { url: string }).url;
    es = await EventSourcing.attach(dataSource);
  },
  teardown: async () => {
    await es?.close();
    if (dataSource?.isInitialized) await dataSource.destroy();
    if (url) await onServer(process.env.DATABASE_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`));
  },
});

/** CRUD rows written with plain SQL, with the NULLs, precisions and foreign key the baseline must keep. */
async function insertCrudRows(): Promise<number[]> {
  await dataSource.query(`INSERT INTO legacy_customer (name) SELECT 'customer ' || c FROM generate_series(1, 10) AS c`);
  const rows: { id: number }[] = await dataSource.query(
    `INSERT INTO legacy_account (name, nickname, balance, "externalRef", "closedAt", settings, "customerId", "createdAt", "updatedAt")
     SELECT 'account ' || n, CASE WHEN n % 3 = 0 THEN NULL ELSE 'nick ' || n END, (1234.5 + n * 0.01)::numeric(12,2),
            CASE WHEN n % 2 = 0 THEN (9007199254740993 + n * 7)::bigint ELSE NULL END,
            CASE WHEN n % 4 = 0 THEN timestamptz '2020-02-29 12:34:56.789+00' + n * interval '1 day' ELSE NULL END,
            jsonb_build_object('n', n, 'tags', jsonb_build_array('a', n)), CASE WHEN n % 5 = 0 THEN NULL ELSE 1 + n % 10 END,
            timestamptz '2015-06-01 00:00:00.123+00' + n * interval '1 hour', timestamptz '2019-01-01 00:00:00.456+00'
     FROM generate_series(1, $1::int) AS n ORDER BY n RETURNING id`,
    [ROWS],
  );
  return rows.map((row) => row.id);
}

async function rowTexts(): Promise<Map<number, string>> {
  const rows: { id: number; json: string }[] = await dataSource.query(`SELECT id, row_to_json(t)::text AS json FROM legacy_account t ORDER BY id`);
  return new Map(rows.map((row) => [row.id, row.json]));
}

/**
 * The table holds whole batches only: every row is at version 0 without events, or at version 1
 * with exactly one event, the baseline at version 1, whose replay equals the row (verify lists
 * drift for any difference); the baselined rows are the first ones in key order, a whole number
 * of batches; and every row prints as before but for the version. Returns how many are baselined.
 */
async function expectWholeBatches(ids: number[], before: Map<number, string>): Promise<number> {
  const rows: { id: number; version: number; events: number; baselines: number }[] = await dataSource.query(
    `SELECT a.id, a.version, count(e.id)::int AS events,
            count(e.id) FILTER (WHERE e.type = 'LegacyAccount.Imported' AND e.version = 1 AND e.created_at = a."createdAt")::int AS baselines
     FROM legacy_account a LEFT JOIN legacy_account_events e ON e.legacy_account_id = a.id GROUP BY a.id ORDER BY a.id`,
  );
  expect(rows).toHaveLength(ROWS);
  const odd = rows.filter((row) => !(row.version === 0 && row.events === 0) && !(row.version === 1 && row.events === 1 && row.baselines === 1));
  expect(odd).toEqual([]);
  const baselined = rows.filter((row) => row.version === 1).map((row) => row.id);
  expect(baselined).toEqual(ids.slice(0, baselined.length));
  expect(baselined.length % BATCH).toBe(0);

  const mismatches = await es.verify(LegacyAccount);
  expect(mismatches.filter((mismatch) => mismatch.reason !== 'noEvents')).toEqual([]);
  expect(mismatches.map((mismatch) => mismatch.id as number).sort((a, b) => a - b)).toEqual(ids.slice(baselined.length));

  const after = await rowTexts();
  const changed = [...before].filter(([id, text]) => after.get(id) !== (id <= baselined[baselined.length - 1] ? text.replace('"version":0', '"version":1') : text));
  expect(changed.slice(0, 3)).toEqual([]);
  return baselined.length;
}

/** The child's connections are gone from the server, so its transaction is over (rolled back). */
async function expectBackendsGone(application: string): Promise<void> {
  await waitFor(`the backends of ${application} to end`, async () => {
    const [{ n }] = await dataSource.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [application]);
    return n === 0;
  }, 10_000);
}

const progressOf = (child: ChildApp): ChildMessage[] => child.messages.filter((message) => message.type === 'progress');

test('a baseline SIGKILLed inside a batch and between batches leaves whole batches; the next run baselines the rest exactly once', async () => {
  const ids = await insertCrudRows();
  const before = await rowTexts();
  expect([...before.values()].every((text) => text.split('"version":0').length === 2)).toBe(true);

  // First kill: inside the sixth batch's transaction, 20 of its events written and not committed.
  const paused = await ChildApp.start('baseline-paused', 'baseline-app', { DATABASE_URL: url, APPLICATION_NAME: 'baseline_resume_1', PAUSE_AT: String(PAUSE_AT) });
  paused.post({ cmd: 'baseline', batchSize: BATCH });
  const pause = await waitFor('the child to stop inside a batch', async () => paused.messages.find((message) => message.type === 'paused'), 40_000);
  expect(pause).toMatchObject({ seen: PAUSE_AT, aggregateId: ids[PAUSE_AT - 1] });
  expect(progressOf(paused).map((progress) => progress.processed)).toEqual([50, 100, 150, 200, 250]);
  // The open transaction really holds written, uncommitted baselines: nobody else sees them, and
  // the rows of its batch are locked while the next batch's are free.
  const [open] = await dataSource.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'baseline_resume_1' AND state = 'idle in transaction'`,
  );
  expect(open.n).toBe(1);
  const [{ visible }] = await dataSource.query(`SELECT count(*)::int AS visible FROM legacy_account_events`);
  expect(visible).toBe(COMMITTED_BEFORE_PAUSE);
  const free = async (batch: number[]) =>
    (await dataSource.query(`SELECT count(*)::int AS n FROM (SELECT id FROM legacy_account WHERE id = ANY($1::int[]) FOR UPDATE SKIP LOCKED) AS free`, [batch]))[0].n;
  expect(await free(ids.slice(COMMITTED_BEFORE_PAUSE, COMMITTED_BEFORE_PAUSE + BATCH))).toBe(0);
  expect(await free(ids.slice(COMMITTED_BEFORE_PAUSE + BATCH, COMMITTED_BEFORE_PAUSE + 2 * BATCH))).toBe(BATCH);
  await paused.kill('SIGKILL');
  expect(paused.exitStatus).toEqual({ code: null, signal: 'SIGKILL' });
  await expectBackendsGone('baseline_resume_1');
  expect(await expectWholeBatches(ids, before)).toBe(COMMITTED_BEFORE_PAUSE);

  // Second kill: a run without pause, killed as soon as it has reported three batches, wherever
  // it is then (mostly inside the next batch).
  const running = await ChildApp.start('baseline-running', 'baseline-app', { DATABASE_URL: url, APPLICATION_NAME: 'baseline_resume_2' });
  running.post({ cmd: 'baseline', batchSize: BATCH });
  await waitFor('three batches of the second run', async () => progressOf(running).length >= 3, 40_000, 5);
  await running.kill('SIGKILL');
  await expectBackendsGone('baseline_resume_2');
  const reported = progressOf(running);
  // It resumed: it counted only the rows still without events, and went on where the first stopped.
  expect(reported[0]).toMatchObject({ processed: BATCH, total: ROWS - COMMITTED_BEFORE_PAUSE, baselined: BATCH });
  const afterSecondKill = await expectWholeBatches(ids, before);
  // What it reported is committed; at most the batches it had not yet reported may be too.
  expect(afterSecondKill).toBeGreaterThanOrEqual(COMMITTED_BEFORE_PAUSE + reported[reported.length - 1].baselined);
  expect(running.messages.some((message) => message.type === 'baselined')).toBe(false);

  // The resume, in this process: exactly the rows left, each once.
  const left = ROWS - afterSecondKill;
  const resumedProgress: number[] = [];
  expect(await es.baseline(LegacyAccount, { batchSize: BATCH, onProgress: (progress) => resumedProgress.push(progress.total) })).toEqual({ processed: left, baselined: left });
  expect(new Set(resumedProgress)).toEqual(new Set([left]));
  expect(await expectWholeBatches(ids, before)).toBe(ROWS);
  const [{ events, aggregates }] = await dataSource.query(`SELECT count(*)::int AS events, count(DISTINCT legacy_account_id)::int AS aggregates FROM legacy_account_events`);
  expect({ events, aggregates }).toEqual({ events: ROWS, aggregates: ROWS });
  expect(await es.verify(LegacyAccount)).toEqual([]);
  expect(await es.baseline(LegacyAccount, { batchSize: BATCH })).toEqual({ processed: 0, baselined: 0 });

  recordFigure('processes killed', 2);
  recordFigure('rows resumed', left);
}, 90_000);
