import type { BenchContext } from '../setup';
import { runGroup, type CaseResult } from '../harness';
import { BenchItemOpened, PlainItem } from '../models';

/**
 * A new aggregate through its creating event (row INSERT + event INSERT) against a plain INSERT:
 * through es.append (the path the target is for) and through manager.save.
 */
export async function createCases(ctx: BenchContext): Promise<CaseResult[]> {
  const manager = ctx.dataSource.manager;
  return runGroup(
    'create',
    { name: 'TypeORM insert (plain entity)', op: (i) => manager.insert(PlainItem, { label: `new-${i}`, version: 1 }) },
    [
      { key: 'create.event', name: 'es.append(event creating its aggregate)', op: (i) => ctx.es.append(BenchItemOpened.build({ label: `new-${i}` })) },
      { key: 'create.save', name: 'manager.save(event creating its aggregate)', op: (i) => manager.save(BenchItemOpened.build({ label: `new-${i}` })) },
    ],
    ctx.config.writes,
  );
}
