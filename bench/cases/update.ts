import { Client } from 'pg';
import type { BenchContext } from '../setup';
import { runGroup, type CaseResult, type Contender } from '../harness';
import { BenchItemRelabeled, BenchItemRelabeledNotified, RelabelItem, RelabelItemNotified, type BenchItem } from '../models';
import { benchItems, plainItems, plainSave } from './targets';

/**
 * One one-column change per op, each way the library offers, with and without an async reactor
 * (whose cost is the outbox INSERT in the write; no worker drains the queue, so the relay's
 * hand-over to Redis is the only other work and it happens after commit).
 */
export async function updateCases(ctx: BenchContext): Promise<CaseResult[]> {
  const { dataSource, es } = ctx;
  const manager = dataSource.manager;
  // Every case keeps its own 200 instances: sharing rows between cases would make the versions
  // the instances hold stale and turn writes into ConcurrencyErrors.
  const pick = async () => {
    const items = await benchItems(dataSource);
    return (i: number): BenchItem => items[i % items.length];
  };
  const [append, appendR, command, commandR, save, saveR, raw] = await Promise.all([pick(), pick(), pick(), pick(), pick(), pick(), pick()]);
  const plain = await plainItems(dataSource);

  // The floor: the same row change and event insert by hand on one pg client, no ORM at all.
  const client = new Client({ connectionString: ctx.databaseUrl });
  await client.connect();
  const rawWrite = async (i: number) => {
    const item = raw(i);
    await client.query('BEGIN');
    const { rows } = await client.query('UPDATE bench_item SET label = $2, version = version + 1 WHERE id = $1 RETURNING version', [item.id, `raw-${i}`]);
    await client.query(
      `INSERT INTO bench_item_events (bench_item_id, version, type, data, metadata, created_at) VALUES ($1, $2, 'BenchItem.Relabeled', $3, '{}', now())`,
      [item.id, rows[0].version, JSON.stringify({ label: `raw-${i}` })],
    );
    await client.query('COMMIT');
  };

  const cases: Contender[] = [
    { key: 'update.append', name: 'es.append(event, { expectedVersion })', op: (i) => es.append(BenchItemRelabeled.build({ benchItem: append(i), label: `a-${i}` }), { expectedVersion: append(i).version }) },
    { key: 'update.command', name: 'Command.call', op: (i) => RelabelItem.call({ benchItem: command(i), label: `c-${i}` }) },
    { key: 'update.save', name: 'manager.save(event)', op: (i) => manager.save(BenchItemRelabeled.build({ benchItem: save(i), label: `s-${i}` })) },
    {
      key: 'update.appendAsync',
      name: 'es.append + async reactor',
      op: (i) => es.append(BenchItemRelabeledNotified.build({ benchItem: appendR(i), label: `a-${i}` }), { expectedVersion: appendR(i).version }),
    },
    { key: 'update.commandAsync', name: 'Command.call + async reactor', op: (i) => RelabelItemNotified.call({ benchItem: commandR(i), label: `c-${i}` }) },
    { key: 'update.saveAsync', name: 'manager.save(event) + async reactor', op: (i) => manager.save(BenchItemRelabeledNotified.build({ benchItem: saveR(i), label: `s-${i}` })) },
    { name: 'raw pg BEGIN/UPDATE/INSERT/COMMIT (reference)', op: rawWrite },
  ];
  try {
    return await runGroup('update', { name: 'TypeORM save (plain entity)', op: plainSave(dataSource, plain) }, cases, ctx.config.writes);
  } finally {
    await client.end();
  }
}
