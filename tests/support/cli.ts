import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The `typeorm-es` bin as users run it, in child processes: src/ and the DataSource modules it
 * loads (examples/cli, tests/cli) compiled by tsc into .test-build/cli-<hash of the sources>/,
 * beside a package.json named `typeorm-event-sourcing`, so the modules import the library by its
 * package name and the bin resolves it from their directory as it does in a user's project.
 * A private build, not dist/: the pack test rebuilds dist/ while other files run.
 */

const root = path.join(__dirname, '..', '..');
const buildRoot = path.join(root, '.test-build');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let buildDir: string | undefined;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return /\.(ts|json)$/.test(entry.name) ? [file] : [];
  });
}

function inputsHash(): string {
  const hash = createHash('sha256');
  const files = [
    ...sourceFiles(path.join(root, 'src')),
    ...sourceFiles(path.join(root, 'examples')),
    ...sourceFiles(path.join(root, 'tests', 'cli')),
    // Models the modules of tests/cli import.
    ...sourceFiles(path.join(root, 'tests', 'support')),
    path.join(root, 'tsconfig.json'),
    path.join(root, 'package-lock.json'),
  ].filter((file) => existsSync(file));
  for (const file of files.sort()) hash.update(path.relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/**
 * Compiles the CLI unless this source state was compiled already (about 8 s when it was not).
 * Test files running at once take turns through a lock directory; the first one compiles.
 */
export async function buildCli(): Promise<string> {
  const dir = path.join(buildRoot, `cli-${inputsHash()}`);
  const stamp = path.join(dir, 'complete');
  const lock = `${dir}.lock`;
  if (!existsSync(stamp)) {
    mkdirSync(buildRoot, { recursive: true });
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        mkdirSync(lock);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        // A lock older than any compile is left over from a killed run.
        try {
          if (Date.now() - statSync(lock).mtimeMs > 90_000) rmSync(lock, { recursive: true, force: true });
        } catch {
          // removed by its owner meanwhile
        }
        if (Date.now() > deadline) throw new Error(`buildCli: ${lock} stayed locked`);
        await sleep(100);
      }
    }
    try {
      if (!existsSync(stamp)) {
        const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
        try {
          await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, 'tests', 'cli', 'tsconfig.json'), '--outDir', dir], { cwd: root });
        } catch (error) {
          const { stdout, stderr } = error as { stdout?: string; stderr?: string };
          throw new Error(`compiling the CLI failed:\n${stdout ?? ''}${stderr ?? ''}`);
        }
        writeFileSync(
          path.join(dir, 'package.json'),
          JSON.stringify({ name: 'typeorm-event-sourcing', private: true, exports: { '.': './src/index.js', './package.json': './package.json' } }),
        );
        writeFileSync(stamp, new Date().toISOString());
        for (const entry of readdirSync(buildRoot)) {
          const old = path.join(buildRoot, entry);
          // Other source states' builds, unused for a while (another run may still use a recent one).
          if (entry.startsWith('cli-') && old !== dir && !entry.endsWith('.lock') && Date.now() - statSync(old).mtimeMs > 15 * 60_000) {
            rmSync(old, { recursive: true, force: true });
          }
        }
      }
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  buildDir = dir;
  return dir;
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
