import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildOnce, root } from './test-build';

/**
 * The `typeorm-es` bin as users run it, in child processes: src/ and the DataSource modules it
 * loads (examples/cli, tests/cli) compiled by tsc into .test-build/cli-<hash of the sources>/,
 * beside a package.json named `typeorm-event-sourcing`, so the modules import the library by its
 * package name and the bin resolves it from their directory as it does in a user's project.
 * A private build, not dist/: the pack test rebuilds dist/ while other files run.
 */

let buildDir: string | undefined;

/** Compiles the CLI unless this source state was compiled already (about 8 s when it was not). */
export async function buildCli(): Promise<string> {
  buildDir = await buildOnce(
    'cli',
    'tests/cli/tsconfig.json',
    // tests/support: models the modules of tests/cli import.
    ['src', 'examples', 'tests/cli', 'tests/support'],
    (dir) =>
      writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: 'typeorm-event-sourcing', private: true, exports: { '.': './src/index.js', './package.json': './package.json' } }),
      ),
  );
  return buildDir;
}

function built(): string {
  if (!buildDir) throw new Error('call buildCli() (in beforeAll) first');
  return buildDir;
}

/** A compiled module of the build, e.g. `examples/cli/data-source`. */
export function compiled(module: string): string {
  return path.join(built(), `${module}.js`);
}

/** The docs' example DataSource module, compiled. */
export const exampleDataSource = () => compiled('examples/cli/data-source');

/** What a finished CLI run left. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stderr's non-empty lines. */
  errorLines: string[];
  ms: number;
}

/** Runs `typeorm-es <args>` to its end (killed after `timeout` ms). */
export async function runBin(args: string[], env: Record<string, string | undefined> = {}, timeout = 30_000): Promise<CliResult> {
  const child = spawnBin(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const started = Date.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal })),
  );
  clearTimeout(timer);
  return { code, signal, stdout, stderr, errorLines: stderr.split('\n').filter((line) => line.trim() !== ''), ms: Date.now() - started };
}

/** Starts `typeorm-es <args>`: for commands that run until a signal. */
export function spawnBin(args: string[], env: Record<string, string | undefined> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [compiled('src/cli/bin'), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}
