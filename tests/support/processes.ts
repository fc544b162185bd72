import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Queue, type Job } from 'bullmq';
import { EventSourcing } from '../../src';
import { createEffectsTable, createRunsTable, EFFECTS_TABLE, orderEntities, RUNS_TABLE } from '../processes/model';
import { testDataSource } from './database';
import { OrderDatabase } from './order-database';
import { buildOnce, root } from './test-build';

/**
 * Child processes for the reliability tests: tests/processes/*.ts compiled with tsc (decorator
 * metadata needs it) into .test-build/, spawned with this Node, driven by JSON lines.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let buildDir: string | undefined;

/**
 * Compiles tests/processes (and the src/ and test models it imports) into a private build (see test-build.ts),
 * unless this source state was compiled already.
 */
export async function compileProcesses(): Promise<void> {
  buildDir = await buildOnce('processes', 'tests/processes/tsconfig.json', ['src', 'tests/processes', 'tests/support']);
}

/** A message a child wrote on stdout. */
export type ChildMessage = { type: string } & Record<string, any>;

const running = new Set<ChildApp>();

/**
 * One child process running a compiled script of tests/processes. Each command gets exactly one
 * reply, in order; `error` messages (the library's onError) are collected apart.
 */
export class ChildApp {
  readonly process: ChildProcessWithoutNullStreams;
  readonly messages: ChildMessage[] = [];
  readonly errors: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #replies: ChildMessage[] = [];
  #waiting: Array<(message: ChildMessage) => void> = [];
  #closed = false;

  private constructor(readonly name: string, script: string, env: Record<string, string | undefined>) {
    if (!buildDir) throw new Error('call compileProcesses() (in beforeAll) before starting a child');
    const file = path.join(buildDir, 'tests', 'processes', `${script}.js`);
    this.process = spawn(process.execPath, ['--enable-source-maps', file], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    running.add(this);
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        running.delete(this);
        resolve(this.#exit);
      });
    });
    this.process.on('close', () => (this.#closed = true));
    this.process.on('error', (error) => (this.#stderr += `spawn error: ${error.stack}\n`));
    this.process.stdin.on('error', () => undefined); // writing to a killed child
    this.process.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      let message: ChildMessage;
      try {
        message = JSON.parse(line);
      } catch {
        message = { type: 'output', line };
      }
      this.messages.push(message);
      if (message.type === 'error') this.errors.push(message.message);
      else if (message.type !== 'output') {
        const waiter = this.#waiting.shift();
        if (waiter) waiter(message);
        else this.#replies.push(message);
      }
    });
  }

  /** Starts a child and waits for its `ready` message. */
  static async start(name: string, script: string, env: Record<string, string | undefined>, timeout = 20_000): Promise<ChildApp> {
    const child = new ChildApp(name, script, env);
    const ready = await child.#next(timeout, 'start');
    if (ready.type !== 'ready') throw new Error(`${name} did not start: ${JSON.stringify(ready)}\n${child.diagnostics()}`);
    return child;
  }

  get pid(): number {
    return this.process.pid!;
  }

  get exitStatus() {
    return this.#exit;
  }

  /** Sends a command and waits for its reply; a `failed` reply throws. */
  async request(command: Record<string, unknown>, timeout = 20_000): Promise<ChildMessage> {
    this.process.stdin.write(`${JSON.stringify(command)}\n`);
    const reply = await this.#next(timeout, String(command.cmd));
    if (reply.type === 'failed') throw new Error(`${this.name}: ${command.cmd} failed: ${reply.message}\n${this.diagnostics()}`);
    return reply;
  }

  /** Sends a command without waiting for its reply (e.g. one that kills the child). */
  post(command: Record<string, unknown>): void {
    this.process.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** Waits for the child to exit by itself. */
  async waitForExit(timeout: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeout} ms\n${this.diagnostics()}`)), timeout);
    });
    try {
      return await Promise.race([this.exited, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal (SIGKILL by default) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#exit) return;
    this.process.kill(signal);
    await this.exited;
  }

  /** What the child said, for failure messages. */
  diagnostics(): string {
    const lines = this.messages.map((message) => JSON.stringify(message)).join('\n');
    return `--- ${this.name} (pid ${this.process.pid}, exit ${JSON.stringify(this.#exit ?? null)}) stdout:\n${lines}\n--- stderr:\n${this.#stderr}`;
  }

  #next(timeout: number, what: string): Promise<ChildMessage> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const stop = () => {
        clearTimeout(timer);
        this.#waiting = this.#waiting.filter((waiter) => waiter !== settle);
        this.process.off('close', onClose);
      };
      // 'close' comes after the child's stdout has ended, so after every line it wrote.
      const onClose = () => {
        stop();
        reject(new Error(`${this.name} exited while waiting for the reply to ${what}\n${this.diagnostics()}`));
      };
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`${this.name}: no reply to ${what} within ${timeout} ms\n${this.diagnostics()}`));
      }, timeout);
      const settle = (message: ChildMessage) => {
        stop();
        resolve(message);
      };
      if (this.#closed) return onClose();
      this.process.once('close', onClose);
      this.#waiting.push(settle);
    });
  }
}

/** SIGKILLs every child still running; for afterAll, whatever the tests did. */
export async function killChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.kill('SIGKILL')));
}

/** A TCP port nothing listens on right now (on 127.0.0.1). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A Redis of the test's own (scripts/services.sh start-redis), to stop and start again. */
export class PrivateRedis {
  readonly #dir: string;
  readonly #persistence: boolean;
  private constructor(readonly port: number, options: { persistence?: boolean }) {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-redis-'));
    this.#persistence = options.persistence ?? true;
  }

  /** `persistence: false` starts Redis without its append-only file: a restart loses every key. */
  static async create(options: { persistence?: boolean } = {}): Promise<PrivateRedis> {
    return new PrivateRedis(await freePort(), options);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await this.#services('start-redis');
  }

  async stop(): Promise<void> {
    await this.#services('stop-redis');
  }

  /** Stops the server and removes its directory. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  async #services(command: string): Promise<void> {
    await promisify(execFile)('bash', [path.join(root, 'scripts', 'services.sh'), command], {
      env: { ...process.env, SERVICES_DIR: this.#dir, REDIS_PORT: String(this.port), REDIS_PERSISTENCE: this.#persistence ? 'on' : 'off' },
    });
  }
}

/** Polls `probe` until it returns something other than undefined/false, or throws after `timeout`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeout = 20_000, interval = 50): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(interval);
  }
}

/** One row of the reactor_runs table the child processes' reactors write. */
export interface ReactorRun {
  eventId: number;
  reactor: string;
  phase: 'started' | 'done';
  pid: number;
  attempt: number;
  jobId: string | null;
}

/** The database of one reliability test: schema created here, before any child attaches. */
export class ReliabilityDatabase extends OrderDatabase {

  static async create(name: string): Promise<ReliabilityDatabase> {
    // The pid keeps two runs of the suite at once (a shared checkout) off each other's database.
    const dataSource = await testDataSource(`reliability_${name}_${process.pid}`, orderEntities);
    const es = await EventSourcing.attach(dataSource, { createSchema: true });
    await es.close();
    await dataSource.query(createRunsTable);
    await dataSource.query(createEffectsTable);
    return new ReliabilityDatabase(dataSource, (dataSource.options as { url: string }).url);
  }

  async runs(phase?: 'started' | 'done'): Promise<ReactorRun[]> {
    return this.dataSource.query(
      `SELECT event_id::int AS "eventId", reactor, phase, pid, attempt, job_id AS "jobId" FROM ${RUNS_TABLE}
       ${phase ? 'WHERE phase = $1' : ''} ORDER BY id`,
      phase ? [phase] : [],
    );
  }

  /** The reactor effects (one row per (event, reactor) at most), as `eventId/reactor` -> the pid that made it. */
  async effects(): Promise<Map<string, number>> {
    const rows: Array<{ eventId: number; reactor: string; pid: number }> = await this.dataSource.query(
      `SELECT event_id::int AS "eventId", reactor, pid FROM ${EFFECTS_TABLE} ORDER BY event_id, reactor`,
    );
    return new Map(rows.map((row) => [`${row.eventId}/${row.reactor}`, row.pid]));
  }

  /**
   * The job of every (event, reactor), in event order: exactly one per pair, with the id the
   * library makes (`identity.position.reactor.` and the job's random key), and no other job in the
   * queue. Job ids end in a random key per outbox row, so they are read from the queue and
   * matched to the events table by the job data (table, id, reactor); any missing, doubled or
   * stray job throws.
   */
  async jobIds(queue: Queue, reactors: readonly string[]): Promise<string[]> {
    const [{ id: identity }] = await this.dataSource.query(`SELECT id::text AS id FROM es_identity`);
    const events: Array<{ id: number; position: string }> = await this.dataSource.query(
      `SELECT id::int AS id, position::text AS position FROM ${this.eventsTable} ORDER BY id`,
    );
    const jobs = await allJobs(queue);
    const byPair = new Map<string, string[]>();
    const stray: string[] = [];
    const eventIds = new Set(events.map((event) => event.id));
    for (const job of jobs) {
      const { table, id, reactor } = job.data ?? {};
      if (table !== this.eventsTable || !eventIds.has(id) || !reactors.includes(reactor)) stray.push(job.id!);
      else byPair.set(`${id}/${reactor}`, [...(byPair.get(`${id}/${reactor}`) ?? []), job.id!]);
    }
    const problems: string[] = stray.map((id) => `job ${id} names no (event, reactor) of ${this.eventsTable}`);
    const ids: string[] = [];
    for (const event of events) {
      for (const reactor of reactors) {
        const found = byPair.get(`${event.id}/${reactor}`) ?? [];
        const job = found.length === 1 ? jobs.find((candidate) => candidate.id === found[0])! : undefined;
        if (!job) problems.push(`event ${event.id} reactor ${reactor}: ${found.length} jobs (${found.join(', ')})`);
        else if (job.id !== `${identity}.${event.position}.${reactor}.${job.data.key}` || !/^[0-9a-f-]{36}$/.test(job.data.key)) {
          problems.push(`event ${event.id} reactor ${reactor}: job id ${job.id} is not ${identity}.${event.position}.${reactor}.<key>`);
        } else ids.push(job.id!);
      }
    }
    if (problems.length > 0) throw new Error(`jobs of ${queue.name} do not match the events:\n${problems.join('\n')}`);
    return ids;
  }

  /** Closes the connection and drops the database. */
  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.drop(process.env.DATABASE_URL);
  }
}

/** A BullMQ Queue handle to inspect a test's queue. */
export function inspectQueue(name: string, redisUrl: string): Queue {
  const url = new URL(redisUrl);
  const password = url.password ? decodeURIComponent(url.password) : undefined;
  const queue = new Queue(name, { connection: { host: url.hostname, port: Number(url.port || 6379), password } });
  queue.on('error', () => undefined); // while a test's Redis is stopped on purpose
  return queue;
}

/** Removes every job of a queue and closes the handle; a failure to remove them fails the caller. */
export async function obliterateQueue(name: string, redisUrl: string): Promise<void> {
  const queue = inspectQueue(name, redisUrl);
  await queue.obliterate({ force: true }).finally(() => queue.close());
}

/** A test's queue handle, if any: its jobs removed (as far as its Redis still answers), the handle closed. */
export async function disposeQueue(queue: Queue | undefined): Promise<void> {
  await queue?.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
}

/** Every job of a queue, whatever its state. */
export async function allJobs(queue: Queue): Promise<Job[]> {
  const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'], 0, -1);
  return jobs.filter((job): job is Job => Boolean(job));
}

/** Job counts of every state, zeros included. */
export async function jobCounts(queue: Queue): Promise<Record<string, number>> {
  return queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed');
}

/** The shared Redis of the suite (global setup sets REDIS_URL). */
export function sharedRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
}

/** A queue name no other test (file, run) uses. */
export function uniqueQueueName(test: string): string {
  return `reliability-${test}-${process.pid}-${Date.now()}`;
}

/** Closes a child through es.close() and expects it to exit by itself, cleanly. */
export async function closeAndExpectExit(child: ChildApp): Promise<void> {
  await child.request({ cmd: 'close' }, 20_000);
  expect(await child.waitForExit(10_000)).toEqual({ code: 0, signal: null });
}

/** Job counts of a queue that holds exactly `completed` completed jobs and nothing else. */
export function onlyCompleted(completed: number): Record<string, number> {
  return { waiting: 0, active: 0, delayed: 0, prioritized: 0, 'waiting-children': 0, completed, failed: 0 };
}
