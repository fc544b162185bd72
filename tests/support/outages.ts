import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Queue } from 'bullmq';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { EventSourcing, type VerifyMismatch } from '../../src';
import { createRunsTable, Order, OrderEvent, reactorNames, RUNS_TABLE } from '../processes/model';
import { outageEntities } from '../processes/outage-model';
import { onServer, OrderDatabase } from './order-database';
import { freePort } from './processes';

/** Helpers of the outage tests: PostgreSQL or Redis stopped, restarted, frozen or forgetful. */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A database of one outage test on any server (the shared one, or a PrivatePostgres): the
 * reliability model plus the outage events, the library's schema and the reactor_runs table,
 * created before any child attaches.
 */
export class OutageDatabase extends OrderDatabase {
  private constructor(dataSource: DataSource, url: string, readonly serverUrl: string) {
    super(dataSource, url);
  }

  static async create(name: string, serverUrl = process.env.DATABASE_URL): Promise<OutageDatabase> {
    if (!serverUrl) throw new Error('DATABASE_URL is not set: run the suite with `npm test`');
    // The pid keeps two runs of the suite at once (a shared checkout) off each other's database.
    const database = `es_outage_${name}_${process.pid}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    await onServer(serverUrl, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${database}"`);
    });
    const url = new URL(serverUrl);
    url.pathname = `/${database}`;
    const dataSource = new DataSource({ type: 'postgres', url: url.toString(), entities: outageEntities, synchronize: true, logging: false });
    await dataSource.initialize();
    const es = await EventSourcing.attach(dataSource, { createSchema: true });
    await es.close();
    await dataSource.query(createRunsTable);
    return new OutageDatabase(dataSource, url.toString(), serverUrl);
  }

  /** `${eventId}/${reactor}` of every reactor run recorded, sorted (duplicates kept). */
  async runPairs(): Promise<string[]> {
    const rows: Array<{ pair: string }> = await this.dataSource.query(`SELECT event_id || '/' || reactor AS pair FROM ${RUNS_TABLE} WHERE phase = 'done'`);
    return rows.map((row) => row.pair).sort();
  }

  /** Every reactor run recorded, in order. */
  async runs(): Promise<Array<{ eventId: number; reactor: string; pid: number; jobId: string | null }>> {
    return this.dataSource.query(`SELECT event_id::int AS "eventId", reactor, pid, job_id AS "jobId" FROM ${RUNS_TABLE} ORDER BY id`);
  }

  /** Per order: its row's version, its events, and the lowest and highest event version. */
  async orderHistories(): Promise<Array<{ id: number; version: number; events: number; first: number; last: number }>> {
    const aggregateColumn = this.dataSource.getMetadata(OrderEvent).columns.find((column) => column.propertyName === 'aggregateId')!.databaseName;
    return this.dataSource.query(
      `SELECT o.id, o.version, count(e.id)::int AS events, min(e.version)::int AS first, max(e.version)::int AS last
       FROM reliability_orders o LEFT JOIN ${this.eventsTable} e ON e.${aggregateColumn} = o.id
       GROUP BY o.id, o.version ORDER BY o.id`,
    );
  }

  /** es.verify over every order: the rows that differ from the replay of their events. */
  async verify(): Promise<VerifyMismatch[]> {
    const es = await EventSourcing.attach(this.dataSource, { createSchema: false });
    try {
      return await es.verify(Order);
    } finally {
      await es.close();
    }
  }

  /** Closes the connection and drops the database (when its server still runs). */
  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.drop(this.serverUrl).catch(() => undefined);
  }
}

/** `${eventId}/${reactor}` for every async reactor of every event, sorted: what should have run once. */
export function expectedPairs(eventIds: readonly number[]): string[] {
  return eventIds.flatMap((id) => reactorNames.map((reactor) => `${id}/${reactor}`)).sort();
}

/** The completed jobs of a queue, by what they carry (event row id, reactor) rather than by id. */
export async function completedJobs(queue: Queue): Promise<Array<{ id: string; pair: string; attemptsMade: number; attemptsStarted: number }>> {
  const jobs = await queue.getJobs(['completed'], 0, -1);
  return jobs
    .map((job) => ({ id: job.id!, pair: `${job.data.id}/${job.data.reactor}`, attemptsMade: job.attemptsMade, attemptsStarted: job.attemptsStarted ?? 0 }))
    .sort((a, b) => a.pair.localeCompare(b.pair));
}

/** The process id of the Redis server at `url` (from INFO), e.g. to SIGSTOP it. */
export async function redisPid(url: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    const info = await client.info('server');
    const pid = /process_id:(\d+)/.exec(info)?.[1];
    if (!pid) throw new Error(`no process_id in INFO of ${url}`);
    return Number(pid);
  } finally {
    client.disconnect();
  }
}

/** Runs one Redis command on a fresh connection. */
export async function redisCommand(url: string, ...args: [string, ...(string | number)[]]): Promise<unknown> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await client.connect();
    return await client.call(...args);
  } finally {
    client.disconnect();
  }
}

/**
 * A Redis started by hand with extra server options (say, an eviction policy the library warns
 * about), on a free loopback port, in a directory of its own; stopped by its pid.
 */
export class HandStartedRedis {
  private constructor(readonly port: number, readonly dir: string, readonly pid: number) {}

  static async start(options: string[]): Promise<HandStartedRedis> {
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-redis-hand-'));
    const pidFile = path.join(dir, 'redis.pid');
    await promisify(execFile)('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--dir', dir,
      '--pidfile', pidFile, '--logfile', path.join(dir, 'redis.log'), ...options,
    ]);
    const url = `redis://127.0.0.1:${port}`;
    for (let tries = 0; ; tries += 1) {
      try {
        if ((await redisCommand(url, 'PING')) === 'PONG') break;
      } catch (error) {
        if (tries > 50) throw error;
      }
      await sleep(100);
    }
    return new HandStartedRedis(port, dir, Number(readFileSync(pidFile, 'utf8').trim()));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    try {
      process.kill(this.pid, 'SIGTERM');
      for (let tries = 0; tries < 50; tries += 1) {
        process.kill(this.pid, 0);
        await sleep(100);
      }
    } catch {
      // gone
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
