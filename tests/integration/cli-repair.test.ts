import { buildCli, exampleDataSource, runBin, type CliResult } from '../support/cli';
import { activeSubscription, openCliProject, type CliProject } from '../support/cli-project';

/**
 * verify, verify --fix and rebuild through the bin: a row changed behind the library's back
 * (raw SQL on a sourced column) is listed with exit code 1, and repaired from its events.
 */

let project: CliProject;

beforeAll(async () => {
  await buildCli();
  project = await openCliProject('cli_repair');
  for (const [index, email] of ['ada@example.com', 'bob@example.com', 'cy@example.com'].entries()) {
    await activeSubscription(project, { email, rewardTitle: `Reward ${index + 1}`, stripeKey: `sub_${index + 1}`, requestId: `req-${index + 1}` });
  }
}, 60_000);

afterAll(async () => {
  await project?.close();
});

function cli(...args: string[]): Promise<CliResult> {
  return runBin(['-d', exampleDataSource(), ...args], project.env);
}

/** Changes sourced columns with raw SQL, as a hand-written UPDATE or a bad migration would. */
async function tamper(id: number): Promise<void> {
  await project.dataSource.query(`UPDATE subscription SET status = 'hacked', "stripeKey" = 'stolen' WHERE id = $1`, [id]);
}

async function row(id: number): Promise<{ status: string; stripeKey: string; version: number }> {
  const [found] = await project.dataSource.query(`SELECT status, "stripeKey", version FROM subscription WHERE id = $1`, [id]);
  return found;
}

const drift = (id: number) => [
  { id, column: 'status', stored: 'hacked', replayed: 'active', reason: 'drift' },
  { id, column: 'stripeKey', stored: 'stolen', replayed: `sub_${id}`, reason: 'drift' },
];

test('verify exits 0 with every row matching, with a progress line on stderr when it is not a terminal', async () => {
  const result = await cli('verify', 'Subscription');
  expect(result.code).toBe(0);
  expect(result.stdout).toBe('Subscription: 3 rows checked, every one matches its events\n');
  expect(result.errorLines).toEqual([expect.stringMatching(/^verify Subscription: 3\/3 \(100%\), \d+\/s, ETA 0s$/)]);
  const quiet = await cli('verify', 'Subscription', '--no-progress', '--json');
  expect({ code: quiet.code, stderr: quiet.stderr, json: JSON.parse(quiet.stdout) }).toEqual({ code: 0, stderr: '', json: { aggregate: 'Subscription', checked: 3, mismatches: [] } });
});

test('a tampered row: verify exits 1 listing it; --fix rebuilds it, verifies again and exits 0', async () => {
  await tamper(2);
  const [human, json, one] = await Promise.all([cli('verify', 'Subscription', '--no-progress'), cli('verify', 'Subscription', '--json'), cli('verify', 'Subscription', '--id', '2', '--json')]);
  expect({ code: human.code, stderr: human.stderr }).toEqual({ code: 1, stderr: '' });
  const lines = human.stdout.trimEnd().split('\n');
  expect(lines[0]).toBe('Subscription: 2 mismatches in 1 of 3 rows');
  expect(lines[1]).toMatch(/^id\s+column\s+stored\s+replayed\s+reason$/);
  expect(lines.slice(2)).toEqual([expect.stringMatching(/^2\s+status\s+"hacked"\s+"active"\s+drift$/), expect.stringMatching(/^2\s+stripeKey\s+"stolen"\s+"sub_2"/)]);
  expect(json.code).toBe(1);
  expect(JSON.parse(json.stdout)).toEqual({ aggregate: 'Subscription', checked: 3, mismatches: drift(2) });
  expect(one.code).toBe(1);
  expect(JSON.parse(one.stdout)).toEqual({ aggregate: 'Subscription', checked: 1, mismatches: drift(2) });
  expect(await row(2)).toEqual({ status: 'hacked', stripeKey: 'stolen', version: 2 });

  const fixed = await cli('verify', 'Subscription', '--fix', '--no-progress');
  expect({ code: fixed.code, stderr: fixed.stderr }).toEqual({ code: 0, stderr: '' });
  expect(fixed.stdout).toContain('\nrebuilt 1 row from their events\nSubscription: the rebuilt rows match their events now\n');
  expect(await row(2)).toEqual({ status: 'active', stripeKey: 'sub_2', version: 2 });
  expect((await cli('verify', 'Subscription')).code).toBe(0);
});

test('verify --fix --json reports what it found, what it rebuilt and what remains', async () => {
  await tamper(1);
  await tamper(3);
  const result = await cli('verify', 'Subscription', '--fix', '--json');
  expect(result.code).toBe(0);
  expect(JSON.parse(result.stdout)).toEqual({ aggregate: 'Subscription', checked: 3, mismatches: [...drift(1), ...drift(3)], rebuilt: 2, remaining: [] });
  expect(result.errorLines).toEqual([
    expect.stringMatching(/^verify Subscription: 3\/3 \(100%\)/),
    expect.stringMatching(/^rebuild Subscription: 2\/2 \(100%\)/),
  ]);
  expect([await row(1), await row(3)]).toEqual([
    { status: 'active', stripeKey: 'sub_1', version: 2 },
    { status: 'active', stripeKey: 'sub_3', version: 2 },
  ]);
});

test('rebuild repairs one row (--id) or every row, as a table and as JSON', async () => {
  await tamper(2);
  const one = await cli('rebuild', 'Subscription', '--id', '2');
  expect({ code: one.code, stderr: one.stderr }).toEqual({ code: 0, stderr: '' });
  expect(one.stdout).toMatch(/^Subscription 2: rebuilt from its events\n/);
  expect(one.stdout).toMatch(/^status\s+"active"$/m);
  expect(await row(2)).toEqual({ status: 'active', stripeKey: 'sub_2', version: 2 });

  await tamper(1);
  await tamper(3);
  const all = await cli('rebuild', 'Subscription', '--json');
  expect(all.code).toBe(0);
  expect(JSON.parse(all.stdout)).toEqual({ aggregate: 'Subscription', processed: 3, total: 3, rebuilt: 2 });
  expect(all.errorLines).toEqual([expect.stringMatching(/^rebuild Subscription: 3\/3 \(100%\), \d+\/s, ETA 0s$/)]);
  expect([await row(1), await row(3)]).toEqual([
    { status: 'active', stripeKey: 'sub_1', version: 2 },
    { status: 'active', stripeKey: 'sub_3', version: 2 },
  ]);
  const again = await cli('rebuild', 'Subscription', '--no-progress');
  expect({ code: again.code, stdout: again.stdout, stderr: again.stderr }).toEqual({ code: 0, stdout: 'Subscription: 3 rows replayed, 0 changed\n', stderr: '' });

  const json = await cli('rebuild', 'Subscription', '--id', '1', '--json');
  expect(JSON.parse(json.stdout)).toEqual({
    aggregate: 'Subscription',
    id: 1,
    state: { id: 1, userId: 1, rewardId: 1, status: 'active', stripeKey: 'sub_1', activatedAt: expect.stringMatching(/Z$/), version: 2 },
  });
});
