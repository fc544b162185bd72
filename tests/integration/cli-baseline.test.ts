import type { DataSource } from 'typeorm';
import { EventSourcing } from '../../src';
import { buildCli, compiled, runBin, type CliResult } from '../support/cli';
import { testDataSource } from '../support/database';
import { legacyEntities } from '../support/legacy-models';

/**
 * `baseline` moves CRUD rows onto events in batches, with progress; `verify` tells rows waiting
 * for their baseline (reason noEvents) from drift, and `--fix` does not pretend to repair them.
 */

const ROWS = 600;
let dataSource: DataSource;
let env: Record<string, string>;

beforeAll(async () => {
  await buildCli();
  dataSource = await testDataSource('cli_baseline', legacyEntities);
  // Attaching with synchronize creates the library's schema.
  await (await EventSourcing.attach(dataSource)).close();
  env = { DATABASE_URL: (dataSource.options as { url: string }).url };
  // Rows as the CRUD application wrote them: plain INSERTs, version 0, no events.
  await dataSource.query(
    `INSERT INTO legacy_account (name, balance, settings, "createdAt", "updatedAt")
     SELECT 'account ' || n, (n * 1.25)::numeric(12,2), jsonb_build_object('n', n), timestamptz '2015-06-01 00:00:00+00' + n * interval '1 hour', now()
     FROM generate_series(1, $1::int) AS n`,
    [ROWS],
  );
  await dataSource.query(`INSERT INTO legacy_note (body) VALUES ('first'), ('second')`);
}, 60_000);

afterAll(async () => {
  await dataSource?.destroy();
});

function cli(...args: string[]): Promise<CliResult> {
  return runBin(['-d', compiled('tests/cli/legacy-data-source'), ...args], env);
}

async function eventCount(table: string): Promise<number> {
  const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM ${table}`);
  return count;
}

test('verify lists rows without events as noEvents, and --fix leaves them to baseline with exit code 1', async () => {
  const [json, fix, many] = await Promise.all([
    cli('verify', 'LegacyNote', '--json', '--no-progress'),
    cli('verify', 'LegacyNote', '--fix', '--no-progress'),
    cli('verify', 'LegacyAccount', '--no-progress'),
  ]);
  // Hundreds of rows waiting for their baseline are one line, not a table of hundreds.
  expect({ code: many.code, stdout: many.stdout }).toEqual({
    code: 1,
    stdout: `LegacyAccount: ${ROWS} mismatches in ${ROWS} of ${ROWS} rows\n${ROWS} rows have no events yet (noEvents): 1, 2, 3, 4, 5 and ${ROWS - 5} more\n`,
  });
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout)).toEqual({
    aggregate: 'LegacyNote',
    checked: 2,
    mismatches: [
      { id: 1, column: 'version', stored: 0, replayed: 0, reason: 'noEvents' },
      { id: 2, column: 'version', stored: 0, replayed: 0, reason: 'noEvents' },
    ],
  });
  expect(json.errorLines).toEqual(['2 rows have no events yet: typeorm-es baseline LegacyNote writes their first event']);
  expect(fix.code).toBe(1);
  // Nothing to rebuild: rebuild replays events, and these rows have none.
  expect(fix.stdout).toBe(
    [
      'LegacyNote: 2 mismatches in 2 of 2 rows',
      '2 rows have no events yet (noEvents): 1, 2',
      'LegacyNote: 2 mismatches remain',
      '2 rows have no events yet (noEvents): 1, 2',
      '',
    ].join('\n'),
  );
  expect(fix.errorLines).toEqual(['2 rows have no events yet: typeorm-es baseline LegacyNote writes their first event']);
  expect(await eventCount('legacy_note_events')).toBe(0);
});

test('baseline writes the first event of every row in batches with progress; a second run finds nothing; verify then passes', async () => {
  const first = await cli('baseline', 'LegacyAccount', '--batch-size', '250');
  expect(first.code).toBe(0);
  expect(first.stdout).toBe(`LegacyAccount: ${ROWS} rows without events looked at, ${ROWS} baselined\n`);
  // Three batches within a second or so: at least the last line, with count, rate and ETA.
  expect(first.errorLines.at(-1)).toMatch(new RegExp(`^baseline LegacyAccount: ${ROWS}/${ROWS} \\(100%\\), \\d+/s, ETA 0s$`));
  expect(await eventCount('legacy_account_events')).toBe(ROWS);
  expect(await dataSource.query(`SELECT DISTINCT version FROM legacy_account`)).toEqual([{ version: 1 }]);

  const again = await cli('baseline', 'LegacyAccount', '--json');
  expect({ code: again.code, stderr: again.stderr, json: JSON.parse(again.stdout) }).toEqual({
    code: 0,
    stderr: '',
    json: { aggregate: 'LegacyAccount', processed: 0, baselined: 0 },
  });
  const verified = await cli('verify', 'LegacyAccount', '--no-progress');
  expect({ code: verified.code, stdout: verified.stdout }).toEqual({ code: 0, stdout: `LegacyAccount: ${ROWS} rows checked, every one matches its events\n` });
});

test('baseline of a model that declares none, or with a bad batch size, is one line and exit code 2', async () => {
  const [missing, badSize] = await Promise.all([cli('baseline', 'LegacyNote'), cli('baseline', 'LegacyAccount', '--batch-size', 'many')]);
  expect({ code: missing.code, stdout: missing.stdout, errorLines: missing.errorLines }).toEqual({
    code: 2,
    stdout: '',
    errorLines: [expect.stringMatching(/^error: .*2 rows hold data from before LegacyNote was sourced .* declares no baseline: declare @Aggregate\(\{ baseline: \(row\) => \.\.\. \}\)/)],
  });
  expect({ code: badSize.code, stdout: badSize.stdout, errorLines: badSize.errorLines }).toEqual({
    code: 2,
    stdout: '',
    errorLines: ["error: option '--batch-size <n>' argument 'many' is invalid. must be a positive integer."],
  });
});
