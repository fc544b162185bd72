import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

/** `npm run demo`, as the README's first command runs it, twice (it must be idempotent). */
const root = path.join(__dirname, '..', '..');

test('the demo tells the story: commands, no-op, validation error, reactors, history, time machine, verify and rebuild', () => {
  for (let run = 0; run < 2; run += 1) {
    const result = spawnSync('npm', ['run', 'demo', '--silent'], { cwd: root, encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const output = result.stdout;
    expect(output).toMatch(/CreateSubscription {6}-> Subscription\.Created, subscription \d+ is pending \(version 1\)/);
    expect(output).toContain('ActivateSubscription    -> Subscription.Activated, status active (version 2)');
    expect(output).toContain('ActivateSubscription    -> no-op, nothing written (version 2)');
    expect(output).toContain('ActivateSubscription    -> ValidationError: ActivateSubscription is invalid: stripeKey should not be empty');
    expect(output).toContain('Trigger reactor         -> reward "Signed poster" has 1 subscriber(s), in the same transaction');
    expect(output).toMatch(/^NewSubscriberNotification\s+creator@example\.com\s+New backer: Ada$/m);
    expect(output).toMatch(/^SubscriptionConfirmation\s+ada@example\.com\s+Your subscription is active$/m);
    expect(output).toContain('CancelSubscription      -> status cancelled (version 3)');
    expect(output).toMatch(/^1\s+Subscription\.Created\s+\{"userId":\d+,"rewardId":\d+\}\s+\{\}/m);
    expect(output).toMatch(/^2\s+Subscription\.Activated\s+\{"stripeKey":"sub_66123"\}\s+\{"notificationId":33456\}/m);
    expect(output).toMatch(/^3\s+Subscription\.Cancelled\s+\{"reason":"too expensive"\}/m);
    expect(output).toMatch(/the subscription was active \(version 2\); now it is cancelled\./);
    expect(output).toMatch(/^\d+\s+status\s+hacked\s+cancelled$/m);
    expect(output).toContain('verify now reports 0 differences.');
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // no stack traces
  }
}, 180_000);

test('the demo worker (docker compose worker service) starts, and stops cleanly on SIGTERM', async () => {
  // What `npm run demo:worker` runs, without npm in between, so the signal reaches the worker.
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
  expect(build.status).toBe(0);
  const compile = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'examples/tsconfig.json'], { cwd: root, encoding: 'utf8' });
  expect(compile.stdout).toBe('');
  const child = spawn(process.execPath, [path.join(root, '.demo-build', 'examples', 'subscriptions', 'worker.js')], { cwd: root, env: process.env });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    for (let waited = 0; !output.includes('worker running') && waited < 60_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(output).toBe('worker running; Ctrl-C to stop\n');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 180_000);
