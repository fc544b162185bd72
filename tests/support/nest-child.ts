import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { buildOnce } from './test-build';

/**
 * A compiled Nest program of tests/nestjs/ run with node (NestJS 12 is ESM-only: jest's CommonJS
 * mode cannot load it). Its stdout lines are JSON objects; stderr is kept whole, for tests that
 * require it to stay empty.
 */
export class NestChild {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: Record<string, any>[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #listeners = new Set<() => void>();

  constructor(readonly name: string, file: string, env: Record<string, string | undefined>) {
    this.process = spawn(process.execPath, ['--enable-source-maps', file], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.process.on('exit', (code, signal) => resolve({ code, signal })));
    this.process.on('close', () => this.#notify());
    this.process.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: this.process.stdout }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        this.lines.push({ output: line });
      }
      this.#notify();
    });
  }

  /** Starts tests/nestjs/<program>.ts, compiled once per source state. */
  static async start(name: string, program: string, env: Record<string, string | undefined>): Promise<NestChild> {
    const dir = await buildNest();
    return new NestChild(name, path.join(dir, 'tests', 'nestjs', `${program}.js`), env);
  }

  /** The first line with the given key, waiting for it up to `timeout` ms. */
  line(key: string, timeout = 20_000): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find((line) => key in line);
        if (found) return done(() => resolve(found));
        if (this.process.exitCode !== null || this.process.signalCode !== null) {
          return done(() => reject(new Error(`${this.name} exited without "${key}"\n${this.diagnostics()}`)));
        }
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name}: no "${key}" within ${timeout} ms\n${this.diagnostics()}`))), timeout);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** The exit status, or an error after `timeout` ms. */
  async exit(timeout: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeout} ms\n${this.diagnostics()}`)), timeout);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running (afterEach clean-up). */
  async kill(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL');
      await this.exited;
    }
  }

  diagnostics(): string {
    return `--- ${this.name} (pid ${this.process.pid}) stdout:\n${this.lines.map((line) => JSON.stringify(line)).join('\n')}\n--- stderr:\n${this.stderr}`;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The tests/nestjs build (the same one nestjs-module.test.ts uses). */
export function buildNest(): Promise<string> {
  return buildOnce('nestjs', 'tests/nestjs/tsconfig.json', ['src', 'tests/nestjs']);
}
