import { Client } from 'pg';
import { freshDatabase } from '../support/database';
import { NestChild } from '../support/nest-child';
import { obliterateQueue } from '../support/processes';

/**
 * One module definition, two roles (tests/nestjs/role-app.ts, ROLE=api|worker): the API process
 * (`worker.enabled` false) writes and stays up while the jobs run, yet runs none of them; the
 * worker process runs every one; both close cleanly (exit 0, nothing on stderr).
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const EVENTS = 6;

test('the API process writes, only the worker process runs the reactor, both close cleanly', async () => {
  const url = await freshDatabase('nestjs_api_worker');
  const queueName = `nestjs-api-worker-${process.pid}-${Date.now()}`;
  const client = new Client({ connectionString: url });
  await client.connect();
  const children: NestChild[] = [];
  try {
    await client.query('CREATE TABLE reactor_runs (event_id int NOT NULL, pid int NOT NULL, role text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const env = { DATABASE_URL: url, REDIS_URL: redisUrl, QUEUE_NAME: queueName, SLOW_MS: '50' };
    const worker = await NestChild.start('worker', 'role-app', { ...env, ROLE: 'worker', SYNC: '1' });
    children.push(worker);
    await worker.line('ready', 60_000);

    const api = await NestChild.start('api', 'role-app', { ...env, ROLE: 'api', EVENTS: String(EVENTS), WAIT_FOR_RUNS: '1' });
    children.push(api);
    expect(await api.line('closed', 60_000)).toEqual({ ownRuns: 0, closed: true });
    expect(await api.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(api.stderr).toBe('');

    const runs = (await client.query('SELECT role, pid, count(*)::int AS runs, count(DISTINCT event_id)::int AS events FROM reactor_runs GROUP BY role, pid')).rows;
    expect(runs).toEqual([{ role: 'worker', pid: worker.process.pid, runs: EVENTS, events: EVENTS }]);
    const events = (await client.query('SELECT count(*)::int AS n FROM subscription_events')).rows[0].n;
    expect(events).toBe(EVENTS);

    worker.process.kill('SIGTERM');
    expect(await worker.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(worker.stderr).toBe('');
  } finally {
    await Promise.all(children.map((child) => child.kill()));
    await client.end();
    await obliterateQueue(queueName, redisUrl);
  }
}, 120_000);
