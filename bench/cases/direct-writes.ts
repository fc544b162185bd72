import type { BenchContext } from '../setup';
import { runGroup, type CaseResult } from '../harness';
import { GuardedItem, GuardedItemOpened, GuardedItemRelabeled } from '../models';
import { TARGETS } from './targets';

/**
 * The directWrites: 'reject' trigger's cost: the same event writes to the same table, the trigger
 * disabled before the baseline's slices and enabled before the case's, so nothing else differs.
 */
export async function directWritesCases(ctx: BenchContext): Promise<CaseResult[]> {
  const { dataSource } = ctx;
  const manager = dataSource.manager;
  const items: GuardedItem[] = [];
  for (let k = 0; k < TARGETS; k += 1) {
    const opened = await manager.save(GuardedItemOpened.build({ label: `open-${k}` }));
    items.push(await manager.findOneByOrFail(GuardedItem, { id: Number(opened.aggregateId) }));
  }
  const trigger = (enabled: boolean) => dataSource.query(`ALTER TABLE guarded_item ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER es_direct_writes`);
  const write = (prefix: string) => (i: number) => manager.save(GuardedItemRelabeled.build({ guardedItem: items[i % items.length], label: `${prefix}-${i}` }));
  try {
    return await runGroup(
      'directWrites',
      { name: "event write, 'reject' trigger off", op: write('off'), beforeSlice: () => trigger(false) },
      [{ key: 'directWrites.rejectTrigger', name: "event write, 'reject' trigger on", op: write('on'), beforeSlice: () => trigger(true) }],
      ctx.config.writes,
    );
  } finally {
    await trigger(true);
  }
}
