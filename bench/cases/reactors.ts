import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from '../setup';
import { median, type CaseResult } from '../harness';
import { BenchItemPinged, type BenchItem } from '../models';
import { benchItems } from './targets';
import { RawProducer } from './raw-bullmq';
import { wallClock, WorkerProcess } from './worker-process';

/** Concurrent producers in the throughput batches; 200 aggregates split evenly, one writer each. */
const WRITERS = 8;
/** Longest wait for a batch's reactor calls: a lost job fails the bench rather than hanging it. */
const WAIT_MS = 60_000;

/**
 * Async reactors end to end: this process writes, one es.worker() (concurrency 1, its default)
 * in a worker process reacts (see reactor-worker.ts). Latency from COMMIT to the reactor call at
 * a steady offered rate, then throughput against plain BullMQ. The update cases left thousands of
 * unworked bench-noop jobs on the library's queue: they are dropped before the worker starts, so
 * that it works only this case's jobs.
 */
export async function reactorsCases(ctx: BenchContext): Promise<CaseResult[]> {
  await emptyQueue(ctx);
  const items = await benchItems(ctx.dataSource);
  const rawQueue = `es-bench-raw-${process.pid}`;
  const raw = new RawProducer(ctx.redisUrl, rawQueue);
  const worker = await WorkerProcess.start({ databaseUrl: ctx.databaseUrl, redisUrl: ctx.redisUrl, queue: ctx.es.queue.name, rawQueue });
  try {
    return [await latencyCase(ctx, items, worker), await throughputCase(ctx, items, worker, raw)];
  } finally {
    await worker.close();
    await raw.close();
  }
}

/** Obliterates the queue until nothing is pending: hand-overs still in flight add jobs after a first pass. */
async function emptyQueue(ctx: BenchContext): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    await ctx.es.queue.obliterate({ force: true });
    if ((await ctx.es.pendingReactorJobs()) === 0) return;
    await sleep(100);
  }
  throw new Error(`the reactor queue did not empty: ${await ctx.es.pendingReactorJobs()} jobs pending`);
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/**
 * The commit time is taken in es.afterCommit (called right after COMMIT, before the job is even
 * handed to Redis), the start time by the reactor in the worker process, both from the system
 * clock. There is no baseline, so no ratio: the figures are p50Ms and p99Ms (target p99 < 25 ms).
 */
async function latencyCase(ctx: BenchContext, items: BenchItem[], worker: WorkerProcess): Promise<CaseResult> {
  const { rate, seconds } = ctx.config.reactors;
  const total = Math.round(rate * seconds);
  const commits = new Map<string, number>();
  const unsubscribe = ctx.es.afterCommit((events) => {
    const now = wallClock();
    for (const event of events) if (event instanceof BenchItemPinged) commits.set(String(event.id), now);
  });
  let achieved: number;
  try {
    const { called } = await worker.expect('library', total, WAIT_MS + seconds * 1000);
    achieved = await offer(ctx, items, total, rate);
    await called;
  } finally {
    unsubscribe();
  }
  const starts = await worker.starts();
  const latencies = [...commits].map(([id, committed]) => {
    const started = starts.get(id);
    if (started === undefined) throw new Error(`event ${id} committed but its reactor never ran`);
    return started - committed;
  });
  if (latencies.length !== total) throw new Error(`${latencies.length} commits seen for ${total} events`);
  const sorted = latencies.sort((a, b) => a - b);
  const ms = (value: number) => Math.round(value * 100) / 100;
  const [p50Ms, p99Ms, maxMs] = [ms(percentile(sorted, 0.5)), ms(percentile(sorted, 0.99)), ms(sorted[sorted.length - 1])];
  // Below the offered rate, the worker fell behind and the percentiles measure its backlog.
  const span = (Math.max(...starts.values()) - Math.min(...commits.values())) / 1000;
  const reactorCallsPerSecond = Math.round(total / span);
  return {
    key: 'reactors.latency',
    extra: { p50Ms, p99Ms, maxMs, events: total, reactorCallsPerSecond },
    group: 'reactors',
    name: `COMMIT to async reactor call, ${rate} events/s offered for ${seconds} s`,
    baseline: 'offered rate (target p99 < 25 ms)',
    metric: 'latency',
    ops: total,
    units: total,
    median: NaN,
    min: NaN,
    max: NaN,
    ratios: [],
    rate: achieved,
    baselineRate: rate,
    notes:
      `p50 ${p50Ms} ms, p99 ${p99Ms} ms, max ${maxMs} ms over ${total} events; of ${rate} events/s offered, ` +
      `${achieved.toFixed(0)}/s were written and ${reactorCallsPerSecond}/s reacted to (first commit to last call)`,
  };
}

/**
 * Open loop: append k starts at k / rate seconds whether or not earlier ones finished, so a slow
 * write does not lower the rate the worker sees. Writes to one aggregate are chained, since one
 * instance must not be written twice at once; with 200 aggregates that almost never waits.
 * Returns the rate achieved (events over the time to the last commit).
 */
async function offer(ctx: BenchContext, items: BenchItem[], total: number, rate: number): Promise<number> {
  const chains = items.map(() => Promise.resolve());
  let failure: unknown;
  const start = wallClock();
  for (let issued = 0; issued < total; await sleep(1)) {
    const due = Math.min(total, Math.floor(((wallClock() - start) * rate) / 1000) + 1);
    for (; issued < due; issued += 1) {
      const k = issued % items.length;
      const label = `p-${issued}`;
      chains[k] = chains[k]
        .then(() => ctx.es.append(BenchItemPinged.build({ benchItem: items[k], label })))
        .then(
          () => undefined,
          (error) => void (failure ??= error),
        );
    }
  }
  await Promise.all(chains);
  if (failure) throw failure;
  return total / ((wallClock() - start) / 1000);
}

/**
 * Jobs/s end to end: n events appended by WRITERS concurrent writers until the worker's last
 * reactor call, against plain BullMQ adding as many jobs from as many producers until the last
 * processor call. In rounds whose order alternates; ratio = library jobs/s / raw jobs/s.
 */
async function throughputCase(ctx: BenchContext, items: BenchItem[], worker: WorkerProcess, raw: RawProducer): Promise<CaseResult> {
  const { events, rounds } = ctx.config.reactors;
  const perRound = Math.ceil(events / rounds);
  // Producing time apart, to tell whether the writes or the worker set the pace.
  const produced = { library: 0, raw: 0 };
  const batch = async (side: 'library' | 'raw', n: number): Promise<number> => {
    const { called } = await worker.expect(side, n, WAIT_MS);
    const start = wallClock();
    await (side === 'library' ? appendBatch(ctx, items, n) : raw.add(n, WRITERS));
    produced[side] += (wallClock() - start) / 1000;
    return ((await called) - start) / 1000;
  };
  // Warm-up: JIT, the pool, both workers' first fetch.
  await batch('library', 4 * WRITERS);
  await batch('raw', 4 * WRITERS);
  Object.assign(produced, { library: 0, raw: 0 });
  const ratios: number[] = [];
  const totals = { library: 0, raw: 0 };
  for (let round = 0; round < rounds; round += 1) {
    const seconds = { library: 0, raw: 0 };
    for (const side of round % 2 ? (['raw', 'library'] as const) : (['library', 'raw'] as const)) seconds[side] = await batch(side, perRound);
    ratios.push(seconds.raw / seconds.library);
    totals.library += seconds.library;
    totals.raw += seconds.raw;
  }
  const count = perRound * rounds;
  const appendsPerSecond = Math.round(count / produced.library);
  const rawAddsPerSecond = Math.round(count / produced.raw);
  return {
    key: 'reactors.throughput',
    extra: { appendsPerSecond, rawAddsPerSecond },
    group: 'reactors',
    name: `${WRITERS} writers -> es.worker() (concurrency 1), no-op async reactor`,
    baseline: `raw BullMQ: ${WRITERS} producers -> Worker (concurrency 1), no-op`,
    metric: 'throughput',
    ops: count,
    units: count,
    median: median(ratios),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    ratios,
    rate: count / totals.library,
    baselineRate: count / totals.raw,
    notes:
      `${rounds} rounds of ${perRound} jobs a side, order alternating, from the first append (add) to the last reactor (processor) call; ` +
      `appends alone ran at ${appendsPerSecond}/s, raw adds at ${rawAddsPerSecond}/s`,
  };
}

/** Writer w owns the aggregates k = w mod WRITERS (200 is a multiple of 8), so no two writes collide. */
async function appendBatch(ctx: BenchContext, items: BenchItem[], n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let j = w; j < n; j += WRITERS) {
        await ctx.es.append(BenchItemPinged.build({ benchItem: items[j % items.length], label: `t-${j}` }));
      }
    }),
  );
}
