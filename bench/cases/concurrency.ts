import { ConcurrencyError } from 'typeorm-event-sourcing';
import type { BenchContext } from '../setup';
import { runGroup, type CaseResult } from '../harness';
import { BenchItem, BenchItemRelabeled } from '../models';
import { benchItems, TARGETS } from './targets';

const WRITERS = 8;
/** Bounded so a livelock shows up as an error, not a hung bench. */
const MAX_ATTEMPTS = 100;

/**
 * Events/s with 8 concurrent writers against 1: on distinct aggregates (scales with the pool and
 * PostgreSQL), and all on one aggregate (serialised by its row lock, plus ConcurrencyError retries
 * for the writers whose expectedVersion went stale). The contended histories are then checked.
 */
export async function concurrencyCases(ctx: BenchContext): Promise<CaseResult[]> {
  const { dataSource, es } = ctx;
  const [single, distinct, contended] = await Promise.all([benchItems(dataSource), benchItems(dataSource), benchItems(dataSource)]);
  let retries = 0;
  let events = 0;
  const appendFresh = async (id: number, label: string) => {
    for (let attempt = 1; ; attempt += 1) {
      // The writer reads the current version like a request handler would, then writes against it.
      const item = await dataSource.manager.findOneByOrFail(BenchItem, { id });
      try {
        await es.append(BenchItemRelabeled.build({ benchItem: item, label }), { expectedVersion: item.version });
        events += 1;
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw error;
        retries += 1;
      }
    }
  };
  const results = await runGroup(
    'concurrency',
    { name: '1 writer', op: (i) => es.append(BenchItemRelabeled.build({ benchItem: single[i % TARGETS], label: `one-${i}` }), { expectedVersion: single[i % TARGETS].version }) },
    [
      {
        key: 'concurrency.scaling',
        name: `${WRITERS} writers, distinct aggregates`,
        units: WRITERS,
        // TARGETS is a multiple of WRITERS: the writers of one op never share an aggregate.
        op: (i) =>
          Promise.all(
            Array.from({ length: WRITERS }, (_, k) => {
              const item = distinct[(i * WRITERS + k) % TARGETS];
              return es.append(BenchItemRelabeled.build({ benchItem: item, label: `d-${i}-${k}` }), { expectedVersion: item.version });
            }),
          ),
      },
      {
        key: 'concurrency.oneAggregate',
        name: `${WRITERS} writers, one aggregate (retry on ConcurrencyError)`,
        units: WRITERS,
        op: (i) => Promise.all(Array.from({ length: WRITERS }, (_, k) => appendFresh(contended[i % TARGETS].id, `c-${i}-${k}`))),
      },
    ],
    { ...ctx.config.concurrency, metric: 'throughput' },
  );
  const check = await checkHistories(ctx, contended.map((item) => item.id));
  const retriesPerEvent = Math.round((retries / Math.max(1, events)) * 100) / 100;
  results[1].extra = { events, retriesPerEvent, ...check };
  const verdict = check.brokenAggregates || check.verifyMismatches ? 'HISTORIES BROKEN' : 'versions contiguous';
  results[1].notes = `${events} events, ${retries} ConcurrencyError retries (${retriesPerEvent} per event); ${verdict}: ${check.brokenAggregates} of ${contended.length} aggregates with gaps or a wrong row version, es.verify: ${check.verifyMismatches} mismatches`;
  return results;
}

/**
 * Versions 1..n without gaps or duplicates, row version = n, and every row equal to its replay.
 * A broken history is a library bug: it fails the run (exit code 1) but the figures are still
 * written, so the report shows what broke.
 */
async function checkHistories(ctx: BenchContext, ids: number[]): Promise<{ brokenAggregates: number; verifyMismatches: number }> {
  const [{ broken }] = await ctx.dataSource.query(
    `SELECT count(*)::int AS broken FROM (
       SELECT e.bench_item_id, count(*) AS n, count(DISTINCT e.version) AS distinct_versions, min(e.version) AS first, max(e.version) AS last, max(i.version) AS row_version
       FROM bench_item_events e JOIN bench_item i ON i.id = e.bench_item_id
       WHERE e.bench_item_id = ANY($1) GROUP BY e.bench_item_id
     ) h WHERE n <> last OR distinct_versions <> n OR first <> 1 OR row_version <> last`,
    [ids],
  );
  const mismatches = await ctx.es.verify(BenchItem);
  if (broken !== 0 || mismatches.length !== 0) {
    console.error(`bench: contended histories broken: ${broken} aggregates with gaps or a wrong row version, ${mismatches.length} verify mismatches`);
    process.exitCode = 1;
  }
  return { brokenAggregates: broken, verifyMismatches: mismatches.length };
}
