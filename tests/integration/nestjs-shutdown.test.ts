import { Client } from 'pg';
import { freshDatabase } from '../support/database';
import { recordFigure } from '../support/figures';
import { NestChild } from '../support/nest-child';
import { obliterateQueue, waitFor } from '../support/processes';

/**
 * A Nest worker process (`worker: { enabled: true, concurrency: 2 }`, `enableShutdownHooks`)
 * stopped by SIGTERM while reactor jobs of ~500 ms are running: it exits 0 promptly, the jobs in
 * flight finish through a DataSource that is still open (no driver error on stderr), and a second
 * worker runs the rest, so every event's reactor ran at least once.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const EVENTS = 20;
const children: NestChild[] = [];
let queueName = '';

afterEach(async () => {
  await Promise.all(children.map((child) => child.kill()));
  if (queueName) await obliterateQueue(queueName, redisUrl);
});

async function count(client: Client, sql: string): Promise<number> {
  return (await client.query(sql)).rows[0].n;
}

test('SIGTERM with jobs in flight: exit 0, in-flight jobs finish, a second worker runs the rest, nothing lost', async () => {
  const url = await freshDatabase('nestjs_shutdown');
  queueName = `nestjs-shutdown-${process.pid}-${Date.now()}`;
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE TABLE reactor_runs (event_id int NOT NULL, pid int NOT NULL, role text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    const env = { DATABASE_URL: url, REDIS_URL: redisUrl, QUEUE_NAME: queueName, SLOW_MS: '500' };

    const worker1 = await NestChild.start('worker 1', 'role-app', { ...env, ROLE: 'worker', SYNC: '1' });
    children.push(worker1);
    await worker1.line('ready', 30_000);

    const api = await NestChild.start('api', 'role-app', { ...env, ROLE: 'api', EVENTS: String(EVENTS) });
    children.push(api);
    await api.line('closed', 30_000);
    expect((await api.exit(10_000)).code).toBe(0);

    // Mid-run: some jobs done, two in flight, most waiting.
    await waitFor('two runs recorded', async () => (await count(client, 'SELECT count(*)::int AS n FROM reactor_runs')) >= 2, 20_000);
    const signalled = Date.now();
    worker1.process.kill('SIGTERM');
    const signalledAt = (await client.query('SELECT clock_timestamp() AS at')).rows[0].at;
    const status = await worker1.exit(10_000);
    const shutdownMs = Date.now() - signalled;
    expect(status).toEqual({ code: 0, signal: null });
    expect(shutdownMs).toBeLessThan(5_000);
    expect(worker1.lines).toContainEqual({ exit: 0 });
    const byWorker1 = await count(client, `SELECT count(*)::int AS n FROM reactor_runs WHERE pid = ${worker1.process.pid}`);
    // The jobs active at SIGTERM were finished during the close, through a DataSource still open.
    const afterSignal = (await client.query('SELECT count(*)::int AS n FROM reactor_runs WHERE pid = $1 AND at > $2', [worker1.process.pid, signalledAt])).rows[0].n;
    expect(afterSignal).toBeGreaterThanOrEqual(1);
    expect(byWorker1).toBeLessThan(EVENTS);
    expect(worker1.stderr).not.toMatch(/Connection terminated|QueryFailedError|onError/);
    expect(worker1.stderr).toBe('');

    const worker2 = await NestChild.start('worker 2', 'role-app', { ...env, ROLE: 'worker' });
    children.push(worker2);
    await worker2.line('ready', 30_000);
    await waitFor(
      'every event run',
      async () => (await count(client, 'SELECT count(DISTINCT event_id)::int AS n FROM reactor_runs')) === EVENTS,
      30_000,
    );
    worker2.process.kill('SIGTERM');
    expect(await worker2.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(worker2.stderr).toBe('');

    const events = (await client.query('SELECT id::int AS id FROM subscription_events ORDER BY id')).rows.map((row) => row.id);
    const ran = (await client.query('SELECT DISTINCT event_id FROM reactor_runs ORDER BY event_id')).rows.map((row) => row.event_id);
    expect(events).toHaveLength(EVENTS);
    expect(ran).toEqual(events);
    const runs = await count(client, 'SELECT count(*)::int AS n FROM reactor_runs');
    const outbox = await count(client, 'SELECT count(*)::int AS n FROM es_outbox');
    expect(outbox).toBe(0);
    recordFigure('nestjs shutdown: events written', EVENTS);
    recordFigure('nestjs shutdown: jobs finished by the SIGTERMed worker', byWorker1);
    recordFigure('nestjs shutdown: jobs finished after SIGTERM', afterSignal);
    recordFigure('nestjs shutdown: duplicate reactor runs', runs - EVENTS);
    recordFigure('nestjs shutdown: events lost', EVENTS - ran.length);
    recordFigure('nestjs shutdown: SIGTERM to exit', shutdownMs, 'ms');
  } finally {
    await client.end();
  }
}, 120_000);
