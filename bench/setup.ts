import { Redis } from 'ioredis';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { ensureServices } from '../scripts/ensure-services';
import { benchDispatcher, benchEntities } from './models';
import type { GroupOptions } from './harness';

export interface BenchConfig {
  quick: boolean;
  out: string;
  /** `--only update,reactors`: just these groups (for working on one case; the JSON says which ran). */
  only?: string[];
  /** The write groups' interleaving. */
  writes: GroupOptions;
  /** The concurrency group: each of its ops is 8 writes, so quick mode gives it fewer slices. */
  concurrency: GroupOptions;
  /** The replay group: one op is one full pass over the set. */
  replay: GroupOptions & { events: number; aggregates: number };
  /** The reactors case: a paced phase for latency, then batches as fast as possible for throughput. */
  reactors: { rate: number; seconds: number; events: number; rounds: number };
}

export function parseArgs(argv: readonly string[], root: string): BenchConfig {
  const quick = argv.includes('--quick');
  const outIndex = argv.indexOf('--out');
  const out = outIndex >= 0 && argv[outIndex + 1] ? argv[outIndex + 1] : `${root}/bench/results.json`;
  const onlyIndex = argv.indexOf('--only');
  const only = onlyIndex >= 0 ? argv[onlyIndex + 1]?.split(',') : undefined;
  // Seven rounds in both modes: fewer leave min/max meaningless. Quick trims slices and set size.
  return {
    quick,
    out,
    only,
    writes: quick ? { rounds: 7, slices: 2, sliceSize: 20, warmup: 20 } : { rounds: 9, slices: 5, sliceSize: 20, warmup: 40 },
    concurrency: quick ? { rounds: 7, slices: 1, sliceSize: 20, warmup: 10 } : { rounds: 9, slices: 5, sliceSize: 20, warmup: 40 },
    replay: quick
      ? { rounds: 7, slices: 1, sliceSize: 1, warmup: 1, events: 20_000, aggregates: 200 }
      : { rounds: 7, slices: 1, sliceSize: 1, warmup: 1, events: 200_000, aggregates: 2_000 },
    reactors: quick ? { rate: 500, seconds: 3, events: 1_000, rounds: 7 } : { rate: 500, seconds: 10, events: 5_000, rounds: 7 },
  };
}

/**
 * A fresh database per run, so earlier runs' bloat and autovacuum debt do not count; named after
 * the process so that two benches on one server (two worktrees) do not drop each other's.
 */
async function freshDatabase(databaseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `es_bench_${process.pid}`;
  const admin = async (sql: string) => {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export interface BenchContext {
  dataSource: DataSource;
  es: EventSourcing;
  databaseUrl: string;
  redisUrl: string;
  config: BenchConfig;
  close(): Promise<void>;
}

export async function setUp(config: BenchConfig): Promise<BenchContext> {
  const services = ensureServices();
  const database = await freshDatabase(services.databaseUrl);
  const dataSource = new DataSource({ type: 'postgres', url: database.url, entities: benchEntities, synchronize: true });
  await dataSource.initialize();
  // A queue name per run: the jobs of the update cases' reactors pile up unworked and are dropped.
  const name = `es-bench-${process.pid}`;
  const es = await EventSourcing.attach(dataSource, { dispatcher: benchDispatcher, queue: { connection: services.redisUrl, name } });
  return {
    dataSource,
    es,
    databaseUrl: database.url,
    redisUrl: services.redisUrl,
    config,
    async close() {
      await es.queue.obliterate({ force: true }).catch(() => undefined);
      await es.close();
      await dataSource.destroy();
      await database.drop();
    },
  };
}

/** The server versions for the JSON output: figures only compare between runs on the same ones. */
export async function serverVersions(ctx: BenchContext): Promise<{ postgres: string; redis: string }> {
  const [{ server_version: postgres }] = await ctx.dataSource.query('SHOW server_version');
  const client = new Redis(ctx.redisUrl, { lazyConnect: true });
  await client.connect();
  const info = await client.info('server').finally(() => client.quit());
  const redis = /^redis_version:(.*)$/m.exec(info)?.[1]?.trim() ?? 'unknown';
  return { postgres, redis };
}
