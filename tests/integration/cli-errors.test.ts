import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordFigure } from '../support/figures';
import { freePort } from '../support/processes';
import { buildCli, compiled, exampleDataSource, runBin, type CliResult } from '../support/cli';
import { activeSubscription, openCliProject, type CliProject } from '../support/cli-project';

/**
 * Every mistake on the command line or in the -d module is one line on stderr, exit code 2,
 * nothing on stdout and never a stack trace: scripts can rely on the code, people read the line.
 */

let project: CliProject;
/** A directory outside the repository, where neither ts-node nor this library can be resolved. */
let outside: string;

beforeAll(async () => {
  await buildCli();
  project = await openCliProject('cli_errors');
  await activeSubscription(project, { email: 'bob@example.com', rewardTitle: 'Mug', stripeKey: 'sub_1', requestId: 'req-1' });
  outside = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-cli-'));
}, 60_000);

afterAll(async () => {
  await project?.close();
  if (outside) rmSync(outside, { recursive: true, force: true });
});

function cli(...args: string[]): Promise<CliResult> {
  return runBin(['-d', exampleDataSource(), ...args], project.env);
}

/** What a refused command line must leave: exit code 2, one line on stderr, nothing on stdout. */
function refusal(result: CliResult) {
  return { code: result.code, errorLines: result.errorLines, stdout: result.stdout };
}

const refused = (line: string | RegExp) => ({ code: 2, errorLines: [typeof line === 'string' ? line : expect.stringMatching(line)], stdout: '' });

test('--help works everywhere without a DataSource, a database or -d', async () => {
  const noDatabase = { DATABASE_URL: undefined, REDIS_URL: undefined };
  const [top, history, worker] = await Promise.all([runBin(['--help'], noDatabase), runBin(['history', '--help'], noDatabase), runBin(['worker', '-h'], noDatabase)]);
  for (const result of [top, history, worker]) expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(top.stdout).toMatch(/^Usage: typeorm-es \[options\] \[command\]/);
  for (const command of ['history', 'state', 'verify', 'rebuild', 'baseline', 'trace', 'stats', 'schema:sql', 'worker', 'relay']) {
    expect(top.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  }
  expect(top.stdout).toContain('Exit codes: 0 done; 1 verify found rows that differ from their events; 2 a usage,');
  expect(history.stdout).toMatch(/^Usage: typeorm-es history \[options\] <Aggregate> <id>/);
  expect(worker.stdout).toContain('--concurrency <n>');
});

test('mistakes commander finds: unknown option, unknown command, a bad --at date, a bad number, a missing argument', async () => {
  const results = await Promise.all([
    cli('history', 'Subscription', '1', '--jsn'),
    cli('histroy', 'Subscription', '1'),
    cli('state', 'Subscription', '1', '--at', 'yesterday'),
    cli('state', 'Subscription', '1', '--at', '2025-02-30T10:00:00Z'),
    cli('worker', '--concurrency', '0'),
    cli('history', 'Subscription'),
  ]);
  expect(results.map(refusal)).toEqual([
    refused("error: unknown option '--jsn' (Did you mean --json?)"),
    refused("error: unknown command 'histroy' (Did you mean history?)"),
    refused("error: option '--at <iso>' argument 'yesterday' is invalid. must be an ISO 8601 date or date-time, e.g. 2025-06-01T12:00:00Z."),
    // JavaScript would roll February 30th over to March 2nd; PostgreSQL refuses it, and so does the CLI.
    refused("error: option '--at <iso>' argument '2025-02-30T10:00:00Z' is invalid. must be an ISO 8601 date or date-time, e.g. 2025-06-01T12:00:00Z."),
    refused("error: option '--concurrency <n>' argument '0' is invalid. must be a positive integer."),
    refused("error: missing required argument 'id'"),
  ]);
  recordFigure('bad CLI command lines tried', results.length);
});

test('mistakes in what a command names: an unknown aggregate, an id of the wrong type, a missing aggregate, a moment the library refuses', async () => {
  const results = await Promise.all([
    cli('history', 'Subscriptions', '1'),
    cli('history', 'Subscription', 'abc'),
    cli('verify', 'Subscription', '--id', '1.5'),
    cli('history', 'Subscription', '999'),
    cli('state', 'Subscription', '1', '--version', '0'),
    cli('state', 'Subscription', '1', '--version', '1', '--at', '2025-01-01'),
  ]);
  expect(results.map(refusal)).toEqual([
    refused("error: unknown aggregate 'Subscriptions': known aggregates: Reward, Subscription, User"),
    refused("error: history(Subscription): id must be an integer (the type of Subscription.id), got 'abc'"),
    refused("error: verify(Subscription): id must be an integer (the type of Subscription.id), got '1.5'"),
    refused('error: Subscription 999 does not exist'),
    refused('error: stateAt(Subscription): version must be an integer from 1 to 2147483647, got 0 (number)'),
    refused('error: stateAt(Subscription): options must give exactly one of version and at, got both'),
  ]);
  recordFigure('bad CLI command lines tried', results.length);
});

test('mistakes in -d: no option, no file, a module with two DataSources, one with none, one that throws, TypeScript without ts-node', async () => {
  writeFileSync(path.join(outside, 'throws.js'), "throw new Error('DATABASE_HOST is not set\\n    (see .env.example)');\n");
  // A TypeScript DataSource where ts-node cannot be found (it is not installed here at all; a
  // directory outside the repository keeps this so if it ever is).
  copyFileSync(path.join(__dirname, '..', 'cli', 'two-data-sources.ts'), path.join(outside, 'data-source.ts'));
  const results = await Promise.all([
    runBin(['history', 'Subscription', '1'], project.env),
    runBin(['-d', 'nowhere/data-source.js', 'stats'], project.env),
    runBin(['-d', compiled('tests/cli/two-data-sources'), 'stats'], project.env),
    runBin(['-d', compiled('tests/cli/no-data-source'), 'stats'], project.env),
    runBin(['-d', path.join(outside, 'throws.js'), 'stats'], project.env),
    runBin(['-d', path.join(outside, 'data-source.ts'), 'stats'], project.env),
  ]);
  expect(results.map(refusal)).toEqual([
    refused('error: option -d, --data-source <file> is required: the module exporting your DataSource'),
    // Relative to the working directory, which runBin sets to the repository's root.
    refused(`error: cannot find the DataSource file nowhere/data-source.js (${path.join(__dirname, '..', '..', 'nowhere', 'data-source.js')})`),
    refused(`error: ${compiled('tests/cli/two-data-sources')} exports 2 DataSources (primary, replica): export exactly one`),
    refused(`error: ${compiled('tests/cli/no-data-source')} exports no DataSource: export one (export const dataSource = new DataSource({ ... }))`),
    refused(`error: cannot load ${path.join(outside, 'throws.js')}: DATABASE_HOST is not set (see .env.example)`),
    refused(
      `error: ${path.join(outside, 'data-source.ts')} is TypeScript: install ts-node (npm install --save-dev ts-node) to load it, or pass the compiled .js file (tsx and esbuild drop the decorator metadata TypeORM needs)`,
    ),
  ]);
  recordFigure('bad CLI command lines tried', results.length);
});

test('a database out of reach is one line naming it, password masked; Redis out of reach fails only the commands that use the queue', async () => {
  const [databasePort, redisPort] = await Promise.all([freePort(), freePort()]);
  const redisAway = { DATABASE_URL: project.env.DATABASE_URL, REDIS_URL: `redis://:r3dis-pw@127.0.0.1:${redisPort}` };
  const [database, stats, history] = await Promise.all([
    runBin(['-d', exampleDataSource(), 'history', 'Subscription', '1'], { DATABASE_URL: `postgres://alice:s3cret-pw@127.0.0.1:${databasePort}/shop`, REDIS_URL: project.env.REDIS_URL }),
    // Killed after 40 s: a command that waited for Redis forever would show as code null.
    runBin(['-d', exampleDataSource(), 'stats'], redisAway, 40_000),
    runBin(['-d', exampleDataSource(), 'history', 'Subscription', '1'], redisAway),
  ]);
  expect(refusal(database)).toEqual(
    refused(`error: cannot reach the database postgres://alice:***@127.0.0.1:${databasePort}/shop: connect ECONNREFUSED 127.0.0.1:${databasePort}`),
  );
  expect(refusal(stats)).toEqual(
    refused(new RegExp(`^error: cannot reach the reactor queue's server \\(queue typeorm-event-sourcing-[0-9a-f]{8}\\) within 5 s: connect ECONNREFUSED 127\\.0\\.0\\.1:${redisPort}$`)),
  );
  expect(database.stderr + stats.stderr).not.toMatch(/s3cret-pw|r3dis-pw/);
  // Attach gives Redis 1.5 s, the command 5 s, closing the queue 5 s (closeTimeout): bounded,
  // with room for a loaded machine.
  expect(stats.ms).toBeLessThan(25_000);
  // history neither runs reactors nor reads the queue: it attaches without them, Redis unused.
  expect({ code: history.code, stderr: history.stderr }).toEqual({ code: 0, stderr: '' });
  expect(history.stdout).toMatch(/^Subscription 1: 2 events\n/);
});
