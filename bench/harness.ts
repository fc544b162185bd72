/**
 * Interleaved timing: every case runs in the same process as its baseline, in slices that take
 * turns, so drift of the machine (CPU frequency, autovacuum, checkpoints, the page cache, a noisy
 * neighbour) falls on both sides alike. What is reported is the ratio per round, not absolute
 * times, because only the ratio carries over to another machine.
 */

/** One thing to time: `op(i)` is called with a counter private to the contender. */
export interface Contender {
  /** The result's key in the JSON output (see CaseResult.key). */
  key?: string;
  name: string;
  op: (i: number) => Promise<unknown>;
  /** Units one op stands for (events written, rows replayed); rates and ratios are per unit. */
  units?: number;
  /** Untimed set-up before each of its slices (e.g. switching a trigger on). */
  beforeSlice?: () => Promise<unknown>;
}

export interface GroupOptions {
  rounds: number;
  /** Slices per contender per round. */
  slices: number;
  /** Ops per slice. */
  sliceSize: number;
  /** Untimed ops per contender before the first round: JIT, plan cache, connection pool. */
  warmup: number;
  /** 'time': case time per unit / baseline's (lower is better); 'throughput': case units/s / baseline's. */
  metric?: 'time' | 'throughput';
}

export interface CaseResult {
  /** The stable name in the JSON output (`update.append`, `replay.verify`...), when it has one. */
  key?: string;
  /** Further figures of the case for the JSON output (`p50Ms`, `peakRssMb`...), under `cases.<key>`. */
  extra?: Record<string, number>;
  group: string;
  name: string;
  baseline: string;
  /** 'latency': no baseline to divide by, so median/min/max are NaN (null in the JSON) and the figures are in `extra`. */
  metric: 'time' | 'throughput' | 'latency';
  ops: number;
  units: number;
  median: number;
  min: number;
  max: number;
  ratios: number[];
  /** Units per second over all timed slices of this contender. */
  rate: number;
  baselineRate: number;
  peakRssMb?: number;
  baselinePeakRssMb?: number;
  notes?: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Samples RSS while a contender runs, so each one gets the peak seen during its own slices. */
export class RssSampler {
  #peak = 0;
  #timer?: NodeJS.Timeout;
  start(): void {
    this.#peak = Math.max(this.#peak, process.memoryUsage().rss);
    this.#timer = setInterval(() => (this.#peak = Math.max(this.#peak, process.memoryUsage().rss)), 25);
  }
  stop(): number {
    clearInterval(this.#timer);
    this.#peak = Math.max(this.#peak, process.memoryUsage().rss);
    return this.#peak;
  }
}

/**
 * Runs the baseline and the cases interleaved: per round, `slices` slices of `sliceSize` ops each,
 * the order of the contenders rotated by one every slice (so none always runs first, right after
 * another's cache-warming or vacuum-triggering burst). Each case gets the median over rounds of
 * its per-round ratio against the baseline.
 */
export async function runGroup(group: string, baseline: Contender, cases: Contender[], options: GroupOptions): Promise<CaseResult[]> {
  const contenders = [baseline, ...cases];
  const counters = contenders.map(() => 0);
  const totals = contenders.map(() => ({ ns: 0, ops: 0 }));
  const peaks = contenders.map(() => 0);
  const metric = options.metric ?? 'time';
  const run = async (index: number, ops: number): Promise<number> => {
    const contender = contenders[index];
    await contender.beforeSlice?.();
    const sampler = new RssSampler();
    sampler.start();
    const start = process.hrtime.bigint();
    for (let n = 0; n < ops; n += 1) await contender.op(counters[index]++);
    const ns = Number(process.hrtime.bigint() - start);
    peaks[index] = Math.max(peaks[index], sampler.stop());
    return ns;
  };
  for (let index = 0; index < contenders.length; index += 1) await run(index, options.warmup);
  const ratios: number[][] = cases.map(() => []);
  let turn = 0;
  for (let round = 0; round < options.rounds; round += 1) {
    const roundNs = contenders.map(() => 0);
    for (let slice = 0; slice < options.slices; slice += 1, turn += 1) {
      for (let k = 0; k < contenders.length; k += 1) {
        const index = (k + turn) % contenders.length;
        const ns = await run(index, options.sliceSize);
        roundNs[index] += ns;
        totals[index].ns += ns;
        totals[index].ops += options.sliceSize;
      }
    }
    const perUnit = (index: number) => roundNs[index] / (contenders[index].units ?? 1);
    cases.forEach((_, c) => {
      const timeRatio = perUnit(c + 1) / perUnit(0);
      ratios[c].push(metric === 'time' ? timeRatio : 1 / timeRatio);
    });
  }
  const rate = (index: number) => (totals[index].ops * (contenders[index].units ?? 1)) / (totals[index].ns / 1e9);
  return cases.map((contender, c) => ({
    ...(contender.key ? { key: contender.key } : {}),
    group,
    name: contender.name,
    baseline: baseline.name,
    metric,
    ops: totals[c + 1].ops,
    units: totals[c + 1].ops * (contender.units ?? 1),
    median: median(ratios[c]),
    min: Math.min(...ratios[c]),
    max: Math.max(...ratios[c]),
    ratios: ratios[c],
    rate: rate(c + 1),
    baselineRate: rate(0),
    peakRssMb: peaks[c + 1] / 2 ** 20,
    baselinePeakRssMb: peaks[0] / 2 ** 20,
  }));
}

/** Round-robin target: op i of a contender writes to target i mod n. */
export function roundRobin<T>(targets: readonly T[]): (i: number) => T {
  return (i) => targets[i % targets.length];
}
