import { createInterface } from 'node:readline';
import type { DataSource } from 'typeorm';
import type { EventSourcing } from '../../src';

/**
 * What every child process of the reliability tests shares: the JSON-lines protocol with its
 * parent (commands on stdin, one reply each on stdout), its environment, and how it starts,
 * closes and dies.
 */

export type Handlers = Record<string, (command: Record<string, any>) => Promise<Record<string, unknown>>>;

export function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function optionalNumber(name: string): number | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : Number(value);
}

/** The entries of `options` that are set: unset environment options leave the library's defaults. */
export function definedOnly<T extends Record<string, unknown>>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the child's main; a failed start is reported to the parent, then the process exits. */
export function runChild(main: () => Promise<void>): void {
  // A child whose parent is gone must not linger, whatever state it is in.
  setTimeout(() => process.exit(3), optionalNumber('CHILD_MAX_LIFETIME_MS') ?? 150_000).unref();
  main().catch((error) => {
    send({ type: 'failed', cmd: 'start', message: (error as Error)?.stack ?? String(error) });
    process.exit(2);
  });
}

/** The commands on stdin, run one at a time, in order. */
export class CommandLoop {
  #closing = false;
  readonly #lines = createInterface({ input: process.stdin });

  constructor() {
    this.#lines.on('close', () => {
      // stdin ended without a close command: the parent is gone.
      if (!this.#closing) process.exit(4);
    });
  }

  /** Runs each command line through its handler and says `ready`. */
  serve(handlers: Handlers): void {
    let queue = Promise.resolve();
    this.#lines.on('line', (line) => {
      if (!line.trim()) return;
      queue = queue.then(async () => {
        const command = JSON.parse(line) as Record<string, any>;
        const handler = handlers[command.cmd];
        try {
          if (!handler) throw new Error(`unknown command ${line}`);
          send(await handler(command));
        } catch (error) {
          send({ type: 'failed', cmd: command.cmd, message: (error as Error)?.stack ?? String(error) });
        }
      });
    });
    send({ type: 'ready', pid: process.pid });
  }

  /**
   * The `close` command: es.close() and dataSource.destroy(), then stdin is let go, so the event
   * loop drains and the process must exit by itself.
   */
  async close(es: EventSourcing, dataSource: DataSource): Promise<Record<string, unknown>> {
    this.#closing = true;
    const started = performance.now();
    await es.close();
    await dataSource.destroy();
    this.#lines.close();
    process.stdin.destroy();
    return { type: 'closed', ms: performance.now() - started };
  }
}
