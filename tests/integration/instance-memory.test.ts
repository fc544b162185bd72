import v8 from 'node:v8';
import vm from 'node:vm';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource, type EntityManager } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { rejectionOf } from '../support/rejection';

/**
 * Defect 5 of the hardening issue: before each event, the write path copied the caller's
 * aggregate instance (to put it back on rollback) and kept every copy until the transaction
 * ended. A transaction writing 100 events of an aggregate with a 2 MB column held 100 copies,
 * some 200 MB. Now one copy is kept per instance and savepoint level, and rollbacks (of a
 * savepoint, of everything, after releases) still put the instance back exactly.
 */

@Aggregate()
@Entity()
class MemoryDossier {
  @PrimaryGeneratedColumn() id!: number;
  /** The large column: ~2 MB of distinct strings. */
  @Column({ type: 'jsonb', default: () => `'[]'` }) pages!: string[];
  @Column({ type: 'int', default: 0 }) touches!: number;
  @Column({ type: 'jsonb', default: () => `'{}'` }) log!: { marks?: number[]; last?: { mark: number; at: string } };
  @AggregateVersion() version!: number;
}

@EventsOf(() => MemoryDossier)
abstract class MemoryDossierEvent extends AggregateEvent<MemoryDossier, 'memoryDossier'> {}

@EventType('MemoryDossier.Opened', { creates: true })
class MemoryDossierOpened extends MemoryDossierEvent {
  @Data() pages!: string[];
  apply(dossier: MemoryDossier): void {
    dossier.pages = this.pages;
  }
}

@EventType('MemoryDossier.Touched')
class MemoryDossierTouched extends MemoryDossierEvent {
  @Data() mark!: number;
  apply(dossier: MemoryDossier): void {
    dossier.touches += 1;
    dossier.log = { marks: [...(dossier.log.marks ?? []), this.mark], last: { mark: this.mark, at: this.createdAt.toISOString() } };
  }
}

const entities = [MemoryDossier, MemoryDossierEvent, MemoryDossierOpened, MemoryDossierTouched];
const megabyte = 1024 * 1024;

/** A full collection, so heapUsed counts what is still referenced (jest runs without --expose-gc). */
const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
})();

function heapUsed(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource(`defects_instance_memory_${process.pid}`, entities);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

/** A dossier whose pages column holds `size` bytes of distinct strings, loaded fresh. */
async function openDossier(size: number): Promise<MemoryDossier> {
  const pages = Array.from({ length: Math.ceil(size / 1000) }, (_, index) => `${index}:`.padEnd(1000, 'x'));
  const opened = await dataSource.manager.save(MemoryDossierOpened.build({ pages }));
  return dataSource.manager.findOneByOrFail(MemoryDossier, { id: opened.aggregateId });
}

/** Every column of the instance, deep-copied. */
function columnsOf(dossier: MemoryDossier): Record<string, unknown> {
  return structuredClone({ ...dossier });
}

async function touch(manager: EntityManager, dossier: MemoryDossier, mark: number): Promise<void> {
  await manager.save(MemoryDossierTouched.build({ memoryDossier: dossier, mark }));
}

test('100 events of a 2 MB aggregate in one transaction keep one copy of the instance, not one per event', async () => {
  const dossier = await openDossier(2 * megabyte);
  let growth = 0;
  await dataSource.transaction(async (manager) => {
    const before = heapUsed();
    for (let mark = 1; mark <= 100; mark += 1) await touch(manager, dossier, mark);
    growth = heapUsed() - before;
  });
  expect(dossier.touches).toBe(100);
  expect(dossier.version).toBe(101);
  // Before the fix: ~2 MB per event, some 200 MB.
  expect(growth).toBeLessThan(60 * megabyte);
  recordFigure('heap held by 100 events of a 2 MB aggregate in one transaction', Math.round(growth / megabyte), 'MB');
});

test('100 events each in its own released savepoint: copies of released levels merge into one', async () => {
  const dossier = await openDossier(2 * megabyte);
  let growth = 0;
  await dataSource.transaction(async (manager) => {
    const before = heapUsed();
    for (let mark = 1; mark <= 100; mark += 1) await manager.transaction((savepoint) => touch(savepoint, dossier, mark));
    growth = heapUsed() - before;
  });
  expect(dossier.touches).toBe(100);
  expect(growth).toBeLessThan(60 * megabyte);
  recordFigure('heap held by 100 events of a 2 MB aggregate in 100 savepoints', Math.round(growth / megabyte), 'MB');
});

// The fix keeps fewer copies; these guard that the one copy per level still restores exactly
// (they pass without the fix too, which copied before every event).

test('a savepoint rolled back after many events puts the instance back exactly as before the savepoint', async () => {
  const dossier = await openDossier(20_000);
  await dataSource.transaction(async (manager) => {
    await touch(manager, dossier, 1);
    const beforeSavepoint = columnsOf(dossier);
    await rejectionOf(
      manager.transaction(async (savepoint) => {
        for (let mark = 100; mark < 150; mark += 1) await touch(savepoint, dossier, mark);
        expect(dossier.touches).toBe(51);
        throw new Error('undo the savepoint');
      }),
    );
    expect(columnsOf(dossier)).toEqual(beforeSavepoint);
    await touch(manager, dossier, 2);
  });
  const stored = await dataSource.manager.findOneByOrFail(MemoryDossier, { id: dossier.id });
  expect(stored).toMatchObject({ touches: 2, version: 3, log: { marks: [1, 2] } });
  expect(columnsOf(dossier)).toEqual(columnsOf(stored));
});

test('released savepoints, then a rolled-back one, then a rollback of everything: each level comes back exactly', async () => {
  const dossier = await openDossier(20_000);
  const beforeTransaction = columnsOf(dossier);
  let afterReleases: Record<string, unknown> | undefined;
  await rejectionOf(
    dataSource.transaction(async (manager) => {
      await manager.transaction(async (first) => {
        for (let mark = 1; mark <= 10; mark += 1) await touch(first, dossier, mark);
        await first.transaction(async (nested) => {
          for (let mark = 11; mark <= 20; mark += 1) await touch(nested, dossier, mark);
        });
      });
      afterReleases = columnsOf(dossier);
      await rejectionOf(
        manager.transaction(async (second) => {
          for (let mark = 21; mark <= 40; mark += 1) await touch(second, dossier, mark);
          throw new Error('undo the second savepoint');
        }),
      );
      expect(columnsOf(dossier)).toEqual(afterReleases);
      await touch(manager, dossier, 41);
      throw new Error('undo everything');
    }),
  );
  expect(afterReleases).toMatchObject({ touches: 20, version: 21 });
  expect(columnsOf(dossier)).toEqual(beforeTransaction);
  const stored = await dataSource.manager.findOneByOrFail(MemoryDossier, { id: dossier.id });
  expect(columnsOf(stored)).toEqual(beforeTransaction);
  // The instance is usable again: its version matches the row.
  await touch(dataSource.manager, dossier, 99);
  expect(dossier).toMatchObject({ touches: 1, version: 2, log: { marks: [99] } });
});
