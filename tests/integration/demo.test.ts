import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

/** `npm run demo`, as the README's first command runs it, twice (it must be idempotent). */
const root = path.join(__dirname, '..', '..');

let built = false;
/** What `npm run demo` builds before running: dist/ and the examples, once for this file's tests. */
function buildDemo(): void {
  if (built) return;
  expect(spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' }).status).toBe(0);
  const compile = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'examples/tsconfig.json'], { cwd: root, encoding: 'utf8' });
  expect(compile.stdout).toBe('');
  built = true;
}

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
    expect(output).toMatch(/^Event browser: http:\/\/127\.0\.0\.1:\d+\/aggregates\/Subscription\/\d+ \(npm run demo -- --browse keeps it open\)$/m);
    expect(output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m); // no stack traces
  }
}, 180_000);

test('the demo worker (docker compose worker service) starts, and stops cleanly on SIGTERM', async () => {
  // What `npm run demo:worker` runs, without npm in between, so the signal reaches the worker.
  buildDemo();
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

test('npm run demo -- --browse keeps the event browser serving the story, until SIGTERM', async () => {
  // What `npm run demo -- --browse` runs after building, without npm in between, so the signal reaches the demo.
  buildDemo();
  const child = spawn(process.execPath, [path.join(root, '.demo-build', 'examples', 'subscriptions', 'demo.js'), '--browse'], { cwd: root, env: process.env });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const line = /^Event browser: (http:\/\/127\.0\.0\.1:\d+\/aggregates\/Subscription\/(\d+)) \(Ctrl-C to stop\)$/m;
    for (let waited = 0; !line.test(output) && child.exitCode === null && waited < 90_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [, address, id] = line.exec(output) ?? [];
    expect(address).toBeDefined();
    const page = await fetch(address);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(body).toContain(`<h1>Subscription ${id}</h1>`);
    expect(body).toContain('status: <del><code>&quot;active&quot;</code></del> → <ins><code>&quot;cancelled&quot;</code></ins>');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 180_000);
