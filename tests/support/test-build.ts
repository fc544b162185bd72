import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Private tsc builds for tests that run compiled code in child processes (decorator metadata
 * needs tsc): one directory per source state under .test-build/, compiled once however many test
 * files ask at the same time. A build per source state keeps a run from replacing the files the
 * children of another run (a shared checkout) are loading.
 */

export const root = path.join(__dirname, '..', '..');
const buildRoot = path.join(root, '.test-build');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return /\.(ts|json)$/.test(entry.name) ? [file] : [];
  });
}

/** A hash of every .ts and .json file under the given folders (relative to the repository), plus the tsconfig and lockfile. */
function inputsHash(folders: readonly string[]): string {
  const hash = createHash('sha256');
  const files = [...folders.flatMap((folder) => sourceFiles(path.join(root, folder))), path.join(root, 'tsconfig.json'), path.join(root, 'package-lock.json')].filter(
    (file) => existsSync(file),
  );
  for (const file of files.sort()) hash.update(path.relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Takes the lock directory, waiting for another test file that holds it; a stale one is broken. */
async function lock(dir: string, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than any compile is left over from a killed run.
      try {
        if (Date.now() - statSync(dir).mtimeMs > 90_000) rmSync(dir, { recursive: true, force: true });
      } catch {
        // removed by its owner meanwhile
      }
      if (Date.now() > deadline) throw new Error(`${what}: ${dir} stayed locked`);
      await sleep(100);
    }
  }
}

/**
 * Compiles `tsconfig` into `.test-build/<name>-<hash of inputs>/` unless that build is complete,
 * runs `finish(dir)` on a fresh build, and returns the directory. Builds of the same name for other
 * source states, unused for 15 minutes, are removed (another run may still use a recent one).
 */
export async function buildOnce(name: string, tsconfig: string, inputs: readonly string[], finish?: (dir: string) => void): Promise<string> {
  const dir = path.join(buildRoot, `${name}-${inputsHash(inputs)}`);
  const stamp = path.join(dir, 'complete');
  if (existsSync(stamp)) return dir;
  mkdirSync(buildRoot, { recursive: true });
  const lockDir = `${dir}.lock`;
  await lock(lockDir, `building ${name}`);
  try {
    if (!existsSync(stamp)) {
      const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      try {
        await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, tsconfig), '--outDir', dir], { cwd: root });
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        throw new Error(`compiling ${tsconfig} failed:\n${stdout ?? ''}${stderr ?? ''}`);
      }
      finish?.(dir);
      writeFileSync(stamp, new Date().toISOString());
      for (const entry of readdirSync(buildRoot)) {
        const old = path.join(buildRoot, entry);
        try {
          if (entry.startsWith(`${name}-`) && old !== dir && old !== lockDir && Date.now() - statSync(old).mtimeMs > 15 * 60_000) {
            rmSync(old, { recursive: true, force: true });
          }
        } catch {
          // removed meanwhile
        }
      }
    }
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
  return dir;
}
