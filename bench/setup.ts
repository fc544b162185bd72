import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { ensureServices } from '../scripts/ensure-services';
import { benchDispatcher, benchEntities } from './models';
import type { GroupOptions } from './harness';

export interface BenchConfig {
  quick: boolean;
  out: string;
  /** The write groups' interleaving. */
  writes: GroupOptions;
  /** The replay group: one op is one full pass over the set. */
  replay: GroupOptions & { events: number; aggregates: number };
}

export function parseArgs(argv: readonly string[], root: string): BenchConfig {
  const quick = argv.includes('--quick');
  const outIndex = argv.indexOf('--out');
  const out = outIndex >= 0 && argv[outIndex + 1] ? argv[outIndex + 1] : `${root}/bench-results.json`;
  // Seven rounds in both modes: fewer leave min/max meaningless. Quick trims slices and set size.
  return {
    quick,
    out,
    writes: quick ? { rounds: 7, slices: 2, sliceSize: 20, warmup: 20 } : { rounds: 9, slices: 5, sliceSize: 20, warmup: 40 },
    replay: quick
      ? { rounds: 7, slices: 1, sliceSize: 1, warmup: 1, events: 20_000, aggregates: 200 }
      : { rounds: 7, slices: 1, sliceSize: 1, warmup: 1, events: 200_000, aggregates: 2_000 },
  };
}

/** A fresh database per run, so earlier runs' bloat and autovacuum debt do not count. */
async function freshDatabase(databaseUrl: string): Promise<string> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('DROP DATABASE IF EXISTS es_bench WITH (FORCE)');
  await client.query('CREATE DATABASE es_bench');
  await client.end();
  const url = new URL(databaseUrl);
  url.pathname = '/es_bench';
  return url.toString();
}

export interface BenchContext {
  dataSource: DataSource;
  es: EventSourcing;
  databaseUrl: string;
  config: BenchConfig;
  close(): Promise<void>;
}

export async function setUp(config: BenchConfig): Promise<BenchContext> {
  const services = ensureServices();
  const databaseUrl = await freshDatabase(services.databaseUrl);
  const dataSource = new DataSource({ type: 'postgres', url: databaseUrl, entities: benchEntities, synchronize: true });
  await dataSource.initialize();
  // A queue name per run: the jobs of the reactor cases pile up unworked and are dropped at the end.
  const name = `es-bench-${process.pid}`;
  const es = await EventSourcing.attach(dataSource, { dispatcher: benchDispatcher, queue: { connection: services.redisUrl, name } });
  return {
    dataSource,
    es,
    databaseUrl,
    config,
    async close() {
      await es.queue.obliterate({ force: true }).catch(() => undefined);
      await es.close();
      await dataSource.destroy();
    },
  };
}
