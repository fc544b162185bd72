import { In } from 'typeorm';
import type { DataSource } from 'typeorm';
import { BenchItem, BenchItemOpened, PlainItem } from '../models';

/** How many rows each write case cycles over: enough that no row lock or hot page dominates. */
export const TARGETS = 200;

/** `n` fresh aggregates, written through their creating event, loaded as instances the cases keep. */
export async function benchItems(dataSource: DataSource, n = TARGETS): Promise<BenchItem[]> {
  const ids: number[] = [];
  for (let start = 0; start < n; start += 20) {
    const events = await Promise.all(
      Array.from({ length: Math.min(20, n - start) }, (_, k) => dataSource.manager.save(BenchItemOpened.build({ label: `open-${start + k}` }))),
    );
    ids.push(...events.map((event) => Number(event.aggregateId)));
  }
  const items = await dataSource.manager.findBy(BenchItem, { id: In(ids) });
  return items.sort((a, b) => a.id - b.id);
}

export async function plainItems(dataSource: DataSource, n = TARGETS): Promise<PlainItem[]> {
  const rows = Array.from({ length: n }, (_, k) => dataSource.manager.create(PlainItem, { label: `open-${k}`, version: 1 }));
  return dataSource.manager.save(rows);
}

/** The plain TypeORM save every update case is compared against. */
export function plainSave(dataSource: DataSource, rows: PlainItem[]) {
  return (i: number) => {
    const row = rows[i % rows.length];
    row.label = `plain-${i}`;
    row.version += 1;
    return dataSource.manager.save(row);
  };
}
