import { Client } from 'pg';
import type { BenchContext } from '../setup';
import { RssSampler, runGroup, type CaseResult } from '../harness';
import { Ledger } from '../models';

/**
 * The replay set is written with SQL, not through the library: 200,000 events through the write
 * path would take longer than the whole bench, and what is measured here is reading and folding.
 * Each aggregate gets an Opened event then Credited events; its row is then set to the sums, so
 * the set starts consistent (checked with verify before timing).
 */
async function insertReplaySet(ctx: BenchContext, events: number, aggregates: number): Promise<void> {
  const perAggregate = Math.floor(events / aggregates);
  await ctx.dataSource.query(`INSERT INTO ledger (id, total, version) SELECT g, 0, 0 FROM generate_series(1, $1::int) g`, [aggregates]);
  await ctx.dataSource.query(
    `INSERT INTO ledger_events (ledger_id, version, type, data, metadata, created_at)
     SELECT a, v,
       CASE WHEN v = 1 THEN 'Ledger.Opened' ELSE 'Ledger.Credited' END,
       CASE WHEN v = 1 THEN jsonb_build_object('total', a % 10) ELSE jsonb_build_object('amount', (a * 7 + v) % 100) END,
       '{}'::jsonb, now()
     FROM generate_series(1, $1::int) a, generate_series(1, $2::int) v ORDER BY a, v`,
    [aggregates, perAggregate],
  );
  await ctx.dataSource.query(
    `UPDATE ledger l SET total = s.total, version = s.version
     FROM (SELECT ledger_id, sum(CASE WHEN version = 1 THEN (data->>'total')::int ELSE (data->>'amount')::int END)::int AS total, max(version) AS version
           FROM ledger_events GROUP BY ledger_id) s
     WHERE l.id = s.ledger_id`,
  );
  await ctx.dataSource.query(`SELECT setval(pg_get_serial_sequence('ledger', 'id'), $1::int)`, [aggregates]);
  await ctx.dataSource.query('ANALYZE ledger; ANALYZE ledger_events');
}

/** Empties the ledger tables between the sets of the replay group (events tables refuse TRUNCATE unless told). */
async function emptyLedgers(ctx: BenchContext): Promise<void> {
  await ctx.dataSource.transaction(async (manager) => {
    await manager.query('SET LOCAL typeorm_es.allow_truncate = on');
    await manager.query('TRUNCATE ledger_events, ledger RESTART IDENTITY');
  });
}

/** Rows whose total or version is not the sum of their events (checked in SQL: cheaper than a second replay). */
async function driftedRows(ctx: BenchContext): Promise<number> {
  const [{ count }] = await ctx.dataSource.query(
    `SELECT count(*)::int AS count FROM ledger l
     JOIN (SELECT ledger_id, sum(CASE WHEN version = 1 THEN (data->>'total')::int ELSE (data->>'amount')::int END)::int AS total, max(version) AS version
           FROM ledger_events GROUP BY ledger_id) s ON s.ledger_id = l.id
     WHERE l.total <> s.total OR l.version <> s.version`,
  );
  return count;
}

/** The floor for verify: the same rows read with raw pg in key order and folded in plain JS. */
async function rawFold(client: Client): Promise<number> {
  const { rows: ledgers } = await client.query('SELECT id, total, version FROM ledger ORDER BY id');
  const { rows: events } = await client.query('SELECT ledger_id, version, type, data FROM ledger_events ORDER BY ledger_id, version');
  const folded = new Map<number, { total: number; version: number }>();
  for (const event of events) {
    const state = folded.get(event.ledger_id) ?? { total: 0, version: 0 };
    state.total = event.type === 'Ledger.Opened' ? event.data.total : state.total + event.data.amount;
    state.version = event.version;
    folded.set(event.ledger_id, state);
  }
  let mismatches = 0;
  for (const row of ledgers) {
    const state = folded.get(row.id);
    if (!state || state.total !== row.total || state.version !== row.version) mismatches += 1;
  }
  return mismatches;
}

export async function replayCases(ctx: BenchContext): Promise<CaseResult[]> {
  // First, while nothing has grown the heap yet: its figure is the process's peak RSS.
  const memory = await rebuildAllMemory(ctx);
  await emptyLedgers(ctx);
  const { events, aggregates } = ctx.config.replay;
  const total = Math.floor(events / aggregates) * aggregates;
  await insertReplaySet(ctx, events, aggregates);
  if ((await ctx.es.verify(Ledger)).length !== 0) throw new Error('the replay set does not match its events');
  const client = new Client({ connectionString: ctx.databaseUrl });
  await client.connect();
  try {
    const results = await runGroup(
      'replay',
      {
        name: 'raw pg SELECT + fold in JS',
        units: total,
        op: async () => {
          if ((await rawFold(client)) !== 0) throw new Error('raw fold found mismatches');
        },
      },
      [
        {
          name: `es.verify(${total} events of ${aggregates} aggregates)`,
          units: total,
          op: async () => {
            if ((await ctx.es.verify(Ledger)).length !== 0) throw new Error('verify found mismatches');
          },
        },
      ],
      { ...ctx.config.replay, metric: 'throughput' },
    );
    const verified = results[0];
    verified.key = 'replay.verify';
    verified.extra = { peakRssMb: Math.round(verified.peakRssMb!), rawPeakRssMb: Math.round(verified.baselinePeakRssMb!) };
    verified.notes = `peak RSS ${verified.peakRssMb!.toFixed(0)} MB (raw fold: ${verified.baselinePeakRssMb!.toFixed(0)} MB); rates in events/s`;
    const rebuilt = await rebuildAfterTampering(ctx, total, verified.baselineRate);
    memory.median = memory.min = memory.max = memory.rate / verified.baselineRate;
    memory.ratios = [memory.median];
    memory.baselineRate = verified.baselineRate;
    return [verified, rebuilt, await stateAtCase(ctx, client, aggregates + 1), memory];
  } finally {
    await client.end();
  }
}

/**
 * rebuildAll over a set far larger than a batch (1,000 aggregates of 1,000 events; a fifth of
 * that in --quick), every row tampered so that every row is replayed and written: the process's
 * peak RSS while it runs, which batching by event count keeps to a few batches' worth.
 */
async function rebuildAllMemory(ctx: BenchContext): Promise<CaseResult> {
  const aggregates = ctx.config.quick ? 200 : 1000;
  const perAggregate = 1000;
  const total = aggregates * perAggregate;
  await insertReplaySet(ctx, total, aggregates);
  const startRss = process.memoryUsage().rss / 2 ** 20;
  const { progress, seconds, peak } = await timedRebuildAfterTampering(ctx, async (rebuilt) => rebuilt === aggregates && (await driftedRows(ctx)) === 0);
  return {
    key: 'memory.rebuildAll',
    extra: { peakRssMb: Math.round(peak), startRssMb: Math.round(startRss), seconds: Math.round(seconds * 10) / 10 },
    group: 'memory',
    name: `es.rebuildAll(${total} events of ${aggregates} aggregates${ctx.config.quick ? ', quick: a fifth of the full run' : ''}), every row tampered`,
    baseline: 'raw pg SELECT + fold in JS (the replay group\'s rate)',
    metric: 'throughput',
    ops: 1,
    units: total,
    median: NaN,
    min: NaN,
    max: NaN,
    ratios: [],
    rate: total / seconds,
    baselineRate: NaN,
    peakRssMb: peak,
    notes: `peak RSS ${peak.toFixed(0)} MB (${startRss.toFixed(0)} MB before), ${progress.rebuilt} rows rebuilt in ${seconds.toFixed(1)} s; a single pass`,
  };
}

/** The raw read of one aggregate's events up to a version, folded: the floor for stateAt. */
async function rawStateAt(client: Client, id: number, version: number): Promise<{ total: number; version: number }> {
  const { rows } = await client.query('SELECT version, type, data FROM ledger_events WHERE ledger_id = $1 AND version <= $2 ORDER BY version', [id, version]);
  const state = { total: 0, version: 0 };
  for (const event of rows) {
    state.total = event.type === 'Ledger.Opened' ? event.data.total : state.total + event.data.amount;
    state.version = event.version;
  }
  return state;
}

/** stateAt of one aggregate of 10,000 events, at its last version, against the raw read and fold of those rows. */
async function stateAtCase(ctx: BenchContext, client: Client, id: number): Promise<CaseResult> {
  const length = 10_000;
  await ctx.dataSource.query(`INSERT INTO ledger (id, total, version) VALUES ($1, 0, 0)`, [id]);
  await ctx.dataSource.query(
    `INSERT INTO ledger_events (ledger_id, version, type, data, metadata, created_at)
     SELECT $1, v, CASE WHEN v = 1 THEN 'Ledger.Opened' ELSE 'Ledger.Credited' END,
       CASE WHEN v = 1 THEN jsonb_build_object('total', 3) ELSE jsonb_build_object('amount', v % 100) END, '{}'::jsonb, now()
     FROM generate_series(1, $2::int) v`,
    [id, length],
  );
  await ctx.dataSource.query('ANALYZE ledger_events');
  const expected = await rawStateAt(client, id, length);
  const [result] = await runGroup(
    'replay',
    {
      name: `raw pg SELECT of ${length} events + fold in JS`,
      units: length,
      op: () => rawStateAt(client, id, length),
    },
    [
      {
        name: `es.stateAt(Ledger, id, { version: ${length} }) of one aggregate`,
        units: length,
        op: async () => {
          const state = (await ctx.es.stateAt(Ledger, id, { version: length }))!;
          if (state.total !== expected.total || state.version !== length) throw new Error('stateAt differs from the raw fold');
        },
      },
    ],
    { rounds: 7, slices: 1, sliceSize: 6, warmup: 3, metric: 'throughput' },
  );
  result.key = 'replay.stateAt';
  result.extra = { eventsPerSecond: Math.round(result.rate), rawEventsPerSecond: Math.round(result.baselineRate) };
  result.notes = 'rates in events/s';
  return result;
}

/**
 * Tampers every ledger row, then times one rebuildAll with its peak RSS; `repaired` checks the
 * result (rows rebuilt, of all) before the figures count.
 */
async function timedRebuildAfterTampering(
  ctx: BenchContext,
  repaired: (rebuilt: number, total: number) => Promise<boolean>,
): Promise<{ progress: Awaited<ReturnType<BenchContext['es']['rebuildAll']>>; seconds: number; peak: number }> {
  await ctx.dataSource.query('UPDATE ledger SET total = total + 1');
  const sampler = new RssSampler();
  sampler.start();
  const start = process.hrtime.bigint();
  const progress = await ctx.es.rebuildAll(Ledger);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const peak = sampler.stop() / 2 ** 20;
  if (!(await repaired(progress.rebuilt, progress.total))) throw new Error(`rebuildAll left drift: ${progress.rebuilt} of ${progress.total} rebuilt`);
  return { progress, seconds, peak };
}

/** rebuildAll when every row is wrong, so every row is replayed and written back: one pass, timed. */
async function rebuildAfterTampering(ctx: BenchContext, total: number, rawRate: number): Promise<CaseResult> {
  const { progress, seconds, peak } = await timedRebuildAfterTampering(ctx, async (rebuilt, all) => rebuilt === all && (await ctx.es.verify(Ledger)).length === 0);
  const rate = total / seconds;
  const ratio = rate / rawRate;
  return {
    key: 'replay.rebuildAll',
    extra: { peakRssMb: Math.round(peak), seconds: Math.round(seconds * 10) / 10 },
    group: 'replay',
    name: `es.rebuildAll after tampering every row (one pass)`,
    baseline: 'raw pg SELECT + fold in JS',
    metric: 'throughput',
    ops: 1,
    units: total,
    median: ratio,
    min: ratio,
    max: ratio,
    ratios: [ratio],
    rate,
    baselineRate: rawRate,
    peakRssMb: peak,
    notes: `${progress.rebuilt} of ${progress.total} rows rebuilt in ${seconds.toFixed(1)} s, peak RSS ${peak.toFixed(0)} MB; a single pass, not interleaved`,
  };
}
