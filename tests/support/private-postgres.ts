import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes';

const root = path.join(__dirname, '..', '..');

/** How PostgreSQL is stopped: `fast` shuts down cleanly, `immediate` is a crash (WAL recovery on start). */
export type PostgresStopMode = 'fast' | 'immediate';

/**
 * The postgres user (the server refuses root) must reach the directory through every parent,
 * or the server's log write fails silently and start-up looks like a hang.
 */
function assertTraversable(dir: string): void {
  for (let current = path.dirname(dir); ; current = path.dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) {
      throw new Error(`PrivatePostgres: ${current} is not searchable by other users (chmod o+x), the postgres user cannot reach ${dir}`);
    }
    if (path.dirname(current) === current) return;
  }
}

/** A PostgreSQL of the test's own (scripts/services.sh start-pg), to stop, crash and start again. */
export class PrivatePostgres {
  readonly #dir: string;

  private constructor(readonly port: number) {
    this.#dir = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-pg-'));
    chmodSync(this.#dir, 0o755);
    if (process.getuid?.() === 0) assertTraversable(this.#dir);
    accessSync(this.#dir, constants.W_OK);
  }

  /** An instance on a free port; nothing runs until start(). */
  static async create(): Promise<PrivatePostgres> {
    return new PrivatePostgres(await freePort());
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server (initdb on the first start) and waits until it accepts connections. */
  async start(): Promise<void> {
    await this.#services('start-pg');
  }

  /** Stops the server and waits until it is gone; connections then fail with ECONNREFUSED. */
  async stop(mode: PostgresStopMode = 'fast'): Promise<void> {
    await this.#services('stop-pg', { PG_STOP_MODE: mode });
  }

  async restart(mode: PostgresStopMode = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  /** Stops the server and removes its directory (data included). */
  async dispose(): Promise<void> {
    try {
      await this.stop('immediate');
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  async #services(command: string, env: Record<string, string> = {}): Promise<void> {
    await promisify(execFile)('bash', [path.join(root, 'scripts', 'services.sh'), command], {
      env: { ...process.env, ...env, SERVICES_DIR: this.#dir, PG_PORT: String(this.port) },
    });
  }
}
