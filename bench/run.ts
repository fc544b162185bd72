import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import type { CaseResult } from './harness';
import { jsonReport, printTable } from './report';
import { printGoals } from './goals';
import { parseArgs, serverVersions, setUp } from './setup';
import { updateCases } from './cases/update';
import { createCases } from './cases/create';
import { concurrencyCases } from './cases/concurrency';
import { replayCases } from './cases/replay';
import { directWritesCases } from './cases/direct-writes';
import { reactorsCases } from './cases/reactors';
import { telemetryCases } from './cases/telemetry';
import { browserCases } from './cases/browser';

/**
 * npm run bench [-- --quick] [-- --out FILE]: every case against its baseline, interleaved in
 * this one process (see harness.ts), then a table, the targets, and a JSON file.
 */
async function main(): Promise<void> {
  const started = Date.now();
  // Taken before the bench loads the machine: what else was running.
  const loadavg = os.loadavg().map((load) => Math.round(load * 100) / 100);
  // Compiled to .bench-build/bench/run.js: the repository root is two folders up.
  const config = parseArgs(process.argv.slice(2), path.resolve(__dirname, '..', '..'));
  const ctx = await setUp(config);
  const results: CaseResult[] = [];
  const failed: string[] = [];
  let versions: { postgres: string; redis: string };
  try {
    versions = await serverVersions(ctx);
    for (const [label, cases] of [
      ['update', updateCases],
      ['create', createCases],
      ['concurrency', concurrencyCases],
      ['replay', replayCases],
      ['directWrites', directWritesCases],
      ['telemetry', telemetryCases],
      ['browser', browserCases],
      // Last: it drops the jobs the update cases left on the queue before starting a worker.
      ['reactors', reactorsCases],
    ] as const) {
      if (config.only && !config.only.includes(label)) continue;
      const groupStart = Date.now();
      // One group failing (a lost job, a timeout) must not cost the figures of the others.
      try {
        results.push(...(await cases(ctx)));
        console.error(`bench: ${label} done in ${((Date.now() - groupStart) / 1000).toFixed(1)} s`);
      } catch (error) {
        failed.push(label);
        console.error(`bench: ${label} FAILED after ${((Date.now() - groupStart) / 1000).toFixed(1)} s:`, error);
      }
    }
  } finally {
    await ctx.close();
  }
  const w = config.writes;
  console.log(
    `\n${config.quick ? 'quick' : 'full'} run: writes in ${w.rounds} rounds of ${w.slices} slice(s) of ${w.sliceSize} ops per contender, order rotating each slice; ` +
      `ratio = median over rounds (time per op: case / baseline, lower is better; x…/s: throughput case / baseline, higher is better)\n`,
  );
  printTable(results);
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  const report = jsonReport(results, {
    date: new Date(started).toISOString(),
    quick: config.quick,
    ...(config.only ? { only: config.only } : {}),
    ...(failed.length ? { failed } : {}),
    seconds,
    node: process.version,
    ...versions,
    cpus: os.cpus().length,
    loadavg,
  });
  printGoals(report.cases);
  mkdirSync(path.dirname(path.resolve(config.out)), { recursive: true });
  writeFileSync(config.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`\n${results.length} results in ${seconds.toFixed(0)} s, written to ${config.out}`);
  if (failed.length) {
    console.log(`groups that failed (see above): ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
