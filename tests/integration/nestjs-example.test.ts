import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { freshDatabase } from '../support/database';
import { recordFigure } from '../support/figures';
import { freePort, inspectQueue, jobCounts, obliterateQueue, onlyCompleted, waitFor } from '../support/processes';
import { buildOnce, root } from '../support/test-build';

/**
 * examples/nestjs as its users run it: compiled against dist/ through the package name, an API
 * process (main.js) and a worker process (worker.js, ROLE=worker) on one database and queue,
 * driven by real HTTP requests. NestJS 12 is ESM-only, so the application runs compiled, in
 * child processes.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `nestjs-example-${process.pid}-${Date.now()}`;
const hostile = "'; DROP TABLE subscription; --";
const children: ChildProcessWithoutNullStreams[] = [];
let build = '';

/** A compiled example process, its output collected. */
function start(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [path.join(build, 'examples', 'nestjs', `${script}.js`)], { cwd: root, env: { ...process.env, ...env } });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = (line: string) => waitFor(`${script} to print "${line}" (${output.stderr})`, async () => child.exitCode === null && output.stdout.includes(line), 60_000, 50);
  return { child, output, exited, ready };
}

beforeAll(async () => {
  // What `npm run demo` builds: dist/ (the examples import the package by name, which resolves to
  // it), then the examples, into a private directory per source state.
  const dist = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
  expect(dist.stderr + dist.stdout).toBe('');
  build = await buildOnce('nestjs-example', 'examples/tsconfig.json', ['src', 'examples', 'scripts']);
}, 180_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await obliterateQueue(queueName, redisUrl);
});

test('the Nest example: commands over HTTP, the mail reactor in the worker process, errors as 400/404/409, hostile input refused or stored as text, clean SIGTERM', async () => {
  const databaseUrl = await freshDatabase('nestjs_example');
  const port = await freePort();
  const env = { DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, QUEUE_NAME: queueName, PORT: String(port) };
  const db = new Client({ connectionString: databaseUrl });
  const queue = inspectQueue(queueName, redisUrl);
  const base = `http://127.0.0.1:${port}/subscriptions`;
  const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as any };
  };
  const get = async (url: string) => {
    const response = await fetch(url);
    return { status: response.status, body: (await response.json()) as any };
  };
  const mails = async () => (await db.query('SELECT reactor, "eventId", recipient, subject FROM sent_mails ORDER BY id')).rows;
  try {
    const api = start('main', env);
    await api.ready(`listening on http://127.0.0.1:${port}`);
    await db.connect();

    const created = await post(base, { userId: 7 });
    expect(created).toEqual({ status: 201, body: { id: 1, userId: 7, rewardId: null, status: 'pending', stripeKey: null, activatedAt: null, version: 1 } });

    // The SQL text is a value: bound as a parameter, stored and shown as written.
    const activated = await post(`${base}/1/activate`, { stripeKey: hostile });
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ id: 1, status: 'active', stripeKey: hostile, version: 2 });

    // The API process runs no worker: the job waits for one, and no mail is sent.
    await waitFor('the activation job in the queue', async () => (await jobCounts(queue)).waiting === 1, 10_000);
    expect(await mails()).toEqual([]);

    const worker = start('worker', env);
    await worker.ready('worker running');
    const [{ id: activationId }] = (await db.query(`SELECT id FROM subscription_events WHERE type = 'Subscription.Activated'`)).rows;
    const sent = await waitFor('the mail the worker sends', async () => {
      const rows = await mails();
      return rows.length > 0 && rows;
    }, 20_000);
    expect(sent).toEqual([{ reactor: 'SubscriptionConfirmation', eventId: Number(activationId), recipient: 'user-7@example.com', subject: 'Your subscription is active' }]);

    // Activating an active subscription is a no-op: nothing written, no second job.
    const again = await post(`${base}/1/activate`, { stripeKey: 'sk_other' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: 'active', stripeKey: hostile, version: 2 });

    // Invalid and hostile input: 400 with the command's issues, nothing written.
    const bad: [string, string, string[]][] = [
      [base, JSON.stringify({ userId: hostile }), ['userId']],
      [base, `{"userId": 1, "__proto__": {"status": "active"}}`, ['__proto__']],
      [base, JSON.stringify({ userId: 2, status: 'active', constructor: { prototype: { admin: true } } }), ['constructor', 'status']],
      [base, JSON.stringify({ userId: '<script>alert(1)</script>' }), ['userId']],
      [`${base}/1/cancel`, JSON.stringify({ reason: '' }), ['reason']],
      [`${base}/1/cancel`, JSON.stringify({ reason: 'x'.repeat(201) }), ['reason']],
    ];
    for (const [url, body, attributes] of bad) {
      const answer = await post(url, body);
      expect({ url, body, status: answer.status, error: answer.body.error }).toEqual({ url, body, status: 400, error: 'VALIDATION' });
      expect(answer.body.issues.map((issue: { attribute: string }) => issue.attribute).sort()).toEqual(attributes);
    }
    const issues = (await post(base, { userId: 0 })).body.issues;
    expect(issues).toEqual([{ attribute: 'userId', constraints: { isPositive: 'userId must be a positive number' } }]);
    expect(await post(base, '[{"userId": 1}]')).toMatchObject({ status: 400, body: { message: 'the body must be a JSON object' } });
    recordFigure('nest example hostile requests refused', bad.length + 2);

    // Unknown or malformed ids: 404, never a database error.
    for (const id of ['999', '0', '99999999999', '1%20OR%201%3D1', '%3Cscript%3E']) {
      expect({ id, ...(await get(`${base}/${id}`)) }).toMatchObject({ id, status: 404 });
      expect({ id, ...(await post(`${base}/${id}/activate`, { stripeKey: 'sk' })) }).toMatchObject({ id, status: 404 });
    }

    // A write conditional on a version the client saw: stale is 409, current goes through.
    const stale = await post(`${base}/1/cancel`, { reason: 'too expensive' }, { 'if-match': '1' });
    expect(stale).toEqual({ status: 409, body: { error: 'CONCURRENCY', message: 'Subscription 1: expected version 1, but it is at version 2' } });
    const cancelled = await post(`${base}/1/cancel`, { reason: '<script>alert(1)</script>' }, { 'if-match': '2' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', version: 3 });

    // The command's own validate(): a cancelled subscription is not activated again.
    const refused = await post(`${base}/1/activate`, { stripeKey: 'sk_2' });
    expect(refused.status).toBe(400);
    expect(refused.body.issues).toEqual([{ attribute: 'subscription', constraints: { validate: 'a cancelled subscription cannot be activated' } }]);

    const shown = await get(`${base}/1`);
    expect(shown.status).toBe(200);
    expect(shown.body.subscription).toMatchObject({ id: 1, userId: 7, status: 'cancelled', stripeKey: hostile, version: 3 });
    expect(shown.body.history.map(({ version, type, data }: Record<string, unknown>) => ({ version, type, data }))).toEqual([
      { version: 1, type: 'Subscription.Created', data: { userId: 7, rewardId: null } },
      { version: 2, type: 'Subscription.Activated', data: { stripeKey: hostile } },
      { version: 3, type: 'Subscription.Cancelled', data: { reason: '<script>alert(1)</script>' } },
    ]);
    expect((await db.query('SELECT count(*)::int AS n FROM subscription')).rows).toEqual([{ n: 1 }]);

    api.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(api.output.stderr).toBe('');
    expect(worker.output.stderr).toBe('');
    expect((await db.query('SELECT count(*)::int AS n FROM es_outbox')).rows).toEqual([{ n: 0 }]);
    expect(await jobCounts(queue)).toEqual(onlyCompleted(1));
    // Both processes ran es.close(): it releases the queue name's claim for this database.
    const redis = new Redis(redisUrl);
    try {
      expect(await redis.exists(`bull:${queueName}:typeorm-es-database`)).toBe(0);
    } finally {
      redis.disconnect();
    }
    expect(await mails()).toHaveLength(1);
  } finally {
    await db.end().catch(() => undefined);
    await queue.close();
  }
}, 120_000);

test('forRootAsync: options from an injected configuration provider reach the library', async () => {
  const run = spawnSync(process.execPath, [path.join(build, 'examples', 'nestjs', 'async-options.js')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_example_async'), REDIS_URL: redisUrl, QUEUE_NAME: `${queueName}-async` },
    timeout: 60_000,
  });
  await obliterateQueue(`${queueName}-async`, redisUrl);
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({ status: 'ok', queue: 'ok' });
}, 90_000);

test('docs/nestjs.md transactions: a @Transactional() signup commits both events, or rolls both back', async () => {
  const run = spawnSync(process.execPath, [path.join(build, 'examples', 'nestjs', 'transactions.js')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_example_transactions') },
    timeout: 60_000,
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({ id: 1, failure: 'card declined_card declined', counts: { rows: 1, events: 2 } });
}, 90_000);

test('docs/nestjs.md @nestjs/cqrs bridge: an existing @EventsHandler runs as a reactor job with its injected service', async () => {
  const run = spawnSync(process.execPath, [path.join(build, 'examples', 'nestjs', 'cqrs.js')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_example_cqrs'), REDIS_URL: redisUrl, QUEUE_NAME: `${queueName}-cqrs` },
    timeout: 60_000,
  });
  await obliterateQueue(`${queueName}-cqrs`, redisUrl);
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({ tracked: ['signup of user 7'], jobs: ['TrackSignup'] });
}, 90_000);
