import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { printTable, type CaseResult } from './harness';
import { parseArgs, setUp } from './setup';
import { updateCases } from './cases/update';
import { createCases } from './cases/create';
import { concurrencyCases } from './cases/concurrency';
import { replayCases } from './cases/replay';
import { directWritesCases } from './cases/direct-writes';

/**
 * npm run bench [-- --quick] [-- --out FILE]: every case against its baseline, interleaved in
 * this one process (see harness.ts), then a table and a JSON file of the results.
 */
async function main(): Promise<void> {
  const started = Date.now();
  // Compiled to .bench-build/bench/run.js: the repository root is two folders up.
  const config = parseArgs(process.argv.slice(2), path.resolve(__dirname, '..', '..'));
  const ctx = await setUp(config);
  const results: CaseResult[] = [];
  try {
    for (const [label, cases] of [
      ['update', updateCases],
      ['create', createCases],
      ['concurrency', concurrencyCases],
      ['replay', replayCases],
      ['directWrites', directWritesCases],
    ] as const) {
      const groupStart = Date.now();
      results.push(...(await cases(ctx)));
      console.error(`bench: ${label} done in ${((Date.now() - groupStart) / 1000).toFixed(1)} s`);
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
  const seconds = (Date.now() - started) / 1000;
  writeFileSync(
    config.out,
    JSON.stringify({ date: new Date().toISOString(), quick: config.quick, seconds, node: process.version, cpus: os.cpus().length, config, results }, null, 2) + '\n',
  );
  console.log(`\n${results.length} results in ${seconds.toFixed(0)} s, written to ${config.out}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
