import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

export type Side = 'library' | 'raw';
export type ToWorker = { type: 'expect'; side: Side; n: number } | { type: 'starts' } | { type: 'close' };
export type ToParent =
  | { type: 'ready' }
  | { type: 'expecting'; side: Side }
  | { type: 'done'; side: Side; at: number }
  | { type: 'starts'; starts: [string, number][] }
  | { type: 'error'; message: string };

/**
 * Milliseconds since the epoch with sub-millisecond resolution, comparable between the bench and
 * its worker process: both take it from the same system clock at their start.
 */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

const START_MS = 30_000;

/** The bench's side of reactor-worker.ts: start it, tell it what to count, wait for its answers. */
export class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, { resolve: (message: ToParent) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  #failure?: Error;

  private constructor(env: Record<string, string>) {
    // Compiled next to this file's folder: .bench-build/bench/reactor-worker.js.
    this.#child = fork(path.join(__dirname, '..', 'reactor-worker.js'), { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (message: ToParent) => {
      if (message.type === 'error') return this.#fail(new Error(`reactor worker process: ${message.message}`));
      this.#settle(message.type === 'done' || message.type === 'expecting' ? `${message.type}:${message.side}` : message.type, message);
    });
    this.#child.on('exit', (code) => this.#fail(new Error(`reactor worker process exited (code ${code})`)));
  }

  static async start(env: { databaseUrl: string; redisUrl: string; queue: string; rawQueue: string }): Promise<WorkerProcess> {
    const worker = new WorkerProcess({ BENCH_DATABASE_URL: env.databaseUrl, BENCH_REDIS_URL: env.redisUrl, BENCH_QUEUE: env.queue, BENCH_RAW_QUEUE: env.rawQueue });
    await worker.#next('ready', START_MS);
    return worker;
  }

  /**
   * Starts counting `side`'s calls; resolves once the worker process counts, with `called`: the
   * wall-clock time of the n-th call (rejected after timeoutMs). Wrapped in an object because an
   * async function cannot resolve to a promise without waiting for it.
   */
  async expect(side: Side, n: number, timeoutMs: number): Promise<{ called: Promise<number> }> {
    const called = this.#next(`done:${side}`, timeoutMs).then((message) => (message as { at: number }).at);
    called.catch(() => undefined);
    const expecting = this.#next(`expecting:${side}`, START_MS);
    this.#child.send({ type: 'expect', side, n } satisfies ToWorker);
    await expecting;
    return { called };
  }

  /** The wall-clock start of every library reactor call since the last `expect`, by event id. */
  async starts(): Promise<Map<string, number>> {
    const reply = this.#next('starts', START_MS);
    this.#child.send({ type: 'starts' } satisfies ToWorker);
    return new Map(((await reply) as { starts: [string, number][] }).starts);
  }

  /** Lets running jobs finish, closes the worker's queues and connections, waits for the exit. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || !this.#child.connected) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.send({ type: 'close' } satisfies ToWorker);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  #next(key: string, timeoutMs: number): Promise<ToParent> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(new Error(`reactor worker process: no '${key}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(key, { resolve, reject, timer });
    });
  }

  #settle(key: string, message: ToParent): void {
    const waiter = this.#waiting.get(key);
    if (!waiter) return;
    this.#waiting.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve(message);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const [key, waiter] of this.#waiting) {
      this.#waiting.delete(key);
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }
}
