import { appendFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIGURES_FILE, RESERVED } from './figures-reporter';

/** Set by the global setup to the run's figures directory; jest workers inherit it. */
export const FIGURES_DIR_ENV = 'ES_FIGURES_DIR';

/**
 * Creates this run's figures directory and publishes it in the environment. Called from the
 * global setup, which runs in jest's main process before the workers are spawned: they inherit
 * it, and so every test file of the run writes to one file that figures-reporter.js reads.
 */
export function openFiguresDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'typeorm-es-figures-'));
  process.env[FIGURES_DIR_ENV] = dir;
  return dir;
}

/**
 * Records a figure of the run (writers started, events written, processes killed, events lost...):
 * the reporter prints the sum per name and unit at the end. One short appended line per call, so
 * concurrent workers do not interleave.
 */
export function recordFigure(name: string, value: number, unit?: string): void {
  const dir = process.env[FIGURES_DIR_ENV];
  if (!dir) throw new Error(`recordFigure: ${FIGURES_DIR_ENV} is not set; tests/support/global-setup.ts sets it (unit tier has none)`);
  if (RESERVED.test(name) || (unit && RESERVED.test(unit))) {
    throw new Error(`recordFigure: "${name}" would be counted as a test result by .ci/run; avoid "passed"/"failed"`);
  }
  if (!Number.isFinite(value)) throw new Error(`recordFigure: ${name} must be a finite number, not ${value}`);
  appendFileSync(path.join(dir, FIGURES_FILE), `${JSON.stringify(unit ? { name, value, unit } : { name, value })}\n`);
}
