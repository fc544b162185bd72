import type { DataSource } from 'typeorm';
import { DirectWriteError, EventSourcing } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { allowModel, guardedEntities, rejectModel, warnModel } from '../support/guarded-models';

/** @Aggregate({ directWrites }): TypeORM and raw SQL writes that bypass events, per mode. */
let dataSource: DataSource;
let es: EventSourcing;
const reported: unknown[] = [];

beforeAll(async () => {
  dataSource = await testDataSource('direct_writes', guardedEntities);
  es = await EventSourcing.attach(dataSource, { onError: (error) => reported.push(error) });
});
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
});
beforeEach(() => {
  reported.length = 0;
});

type Model = typeof rejectModel;

async function created(model: Model) {
  const event = await dataSource.manager.save(model.Created.build({ label: 'first' }));
  return dataSource.manager.findOneByOrFail(model.Guarded, { id: event.aggregateId });
}

async function row(model: Model, id: number) {
  const table = dataSource.getMetadata(model.Guarded).tableName;
  const [found] = await dataSource.query(`SELECT id, label, extra, views, version FROM ${table} WHERE id = $1`, [id]);
  return found;
}

/** Each way TypeORM writes a row, changing the sourced `label`. */
const sourcedWrites: [string, (model: Model, id: number) => Promise<unknown>][] = [
  [
    'save() of a loaded entity',
    async (model, id) => {
      const entity = await dataSource.manager.findOneByOrFail(model.Guarded, { id });
      entity.label = 'direct';
      return dataSource.manager.save(entity);
    },
  ],
  ['update()', (model, id) => dataSource.manager.update(model.Guarded, { id }, { label: 'direct' })],
  ['a QueryBuilder update', (model, id) => dataSource.manager.createQueryBuilder().update(model.Guarded).set({ label: 'direct' }).where('id = :id', { id }).execute()],
];

describe.each(sourcedWrites)('%s of a sourced column', (_how, write) => {
  test("reject: DirectWriteError naming aggregate, columns and the way out; nothing written", async () => {
    const { id } = await created(rejectModel);
    const error = (await write(rejectModel, id).catch((caught: unknown) => caught)) as DirectWriteError;
    expect(error).toBeInstanceOf(DirectWriteError);
    expect(error).toMatchObject({ code: 'DIRECT_WRITE', aggregateType: 'GuardedReject', operation: 'update', columns: ['label'] });
    expect(error.message).toMatch(
      /^GuardedReject( \d+)?: update outside the event path writes label, which events decide: write an event \(or a command\) instead, or list columns events do not decide in @Aggregate\(\{ exclude \}\)$/,
    );
    expect(await row(rejectModel, id)).toEqual({ id, label: 'first', extra: null, views: 0, version: 1 });
  });

  test('warn: written, and reported through onError once', async () => {
    const { id } = await created(warnModel);
    await write(warnModel, id);
    expect(await row(warnModel, id)).toMatchObject({ label: 'direct', version: 1 });
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(DirectWriteError);
    expect(reported[0]).toMatchObject({ aggregateType: 'GuardedWarn', columns: ['label'] });
    expect(await es.verify(warnModel.Guarded, { id })).toEqual([{ reason: 'drift', id, column: 'label', stored: 'direct', replayed: 'first' }]);
  });

  test('allow: written, nothing reported', async () => {
    const { id } = await created(allowModel);
    await write(allowModel, id);
    expect(await row(allowModel, id)).toMatchObject({ label: 'direct' });
    expect(reported).toEqual([]);
  });
});

test.each([
  ['save()', (model: Model, id: number) => dataSource.manager.save(model.Guarded, { id, views: 5 })],
  ['update()', (model: Model, id: number) => dataSource.manager.update(model.Guarded, { id }, { views: 5 })],
  ['raw SQL', (model: Model, id: number) => dataSource.query(`UPDATE ${dataSource.getMetadata(model.Guarded).tableName} SET views = 5 WHERE id = $1`, [id])],
])('an excluded column written by %s passes in every mode, unreported', async (_how, write) => {
  for (const model of [rejectModel, warnModel, allowModel]) {
    const { id } = await created(model);
    await write(model, id);
    expect(await row(model, id)).toMatchObject({ label: 'first', views: 5, version: 1 });
  }
  expect(reported).toEqual([]);
});

test('an insert of sourced values outside events: refused under reject, reported under warn', async () => {
  await expect(dataSource.manager.insert(rejectModel.Guarded, { label: 'sneaked in' })).rejects.toThrow(
    'GuardedReject: insert outside the event path writes label, which events decide',
  );
  expect(await dataSource.manager.countBy(rejectModel.Guarded, { label: 'sneaked in' })).toBe(0);
  await dataSource.manager.insert(warnModel.Guarded, { label: 'sneaked in' });
  expect(reported).toEqual([expect.objectContaining({ operation: 'insert', columns: ['label'] })]);
});

describe('reject: the database trigger catches raw SQL and other programs', () => {
  test('an UPDATE of a sourced column without the version rising by one is refused; with it, or of an excluded column, it passes', async () => {
    const { id } = await created(rejectModel);
    await expect(dataSource.query(`UPDATE guarded_reject SET label = 'raw' WHERE id = $1`, [id])).rejects.toThrow(
      'GuardedReject: UPDATE of guarded_reject changes sourced columns without an event (directWrites: reject); write an event instead',
    );
    await expect(dataSource.query(`UPDATE guarded_reject SET version = 5 WHERE id = $1`, [id])).rejects.toThrow('changes sourced columns without an event');
    await expect(dataSource.query(`UPDATE guarded_reject SET extra = '{"a": 1}' WHERE id = $1`, [id])).rejects.toThrow('changes sourced columns without an event');
    expect(await row(rejectModel, id)).toEqual({ id, label: 'first', extra: null, views: 0, version: 1 });
    await dataSource.query(`UPDATE guarded_reject SET label = 'raw', version = version + 1 WHERE id = $1`, [id]);
    expect(await row(rejectModel, id)).toMatchObject({ label: 'raw', version: 2 });
    // An operator's repair says so in its transaction.
    await dataSource.transaction(async (manager) => {
      await manager.query(`SET LOCAL typeorm_es.allow_direct_write = on`);
      await manager.query(`UPDATE guarded_reject SET label = 'repaired' WHERE id = $1`, [id]);
    });
    expect(await row(rejectModel, id)).toMatchObject({ label: 'repaired', version: 2 });
    await expect(dataSource.query(`UPDATE guarded_reject SET label = 'after' WHERE id = $1`, [id])).rejects.toThrow('changes sourced columns without an event');
  });

  test('events, rebuild, baseline and lazy adoption all work under it', async () => {
    const entity = await created(rejectModel);
    await dataSource.manager.save(rejectModel.Relabelled.build({ aggregate: entity, label: 'second' }));
    expect(entity).toMatchObject({ label: 'second', version: 2 });
    // A tampered row (the trigger disabled, as a DBA could): rebuild puts it back though its version jumps.
    await dataSource.query(`ALTER TABLE guarded_reject DISABLE TRIGGER es_direct_writes`);
    await dataSource.query(`UPDATE guarded_reject SET label = 'tampered', version = 9 WHERE id = $1`, [entity.id]);
    await dataSource.query(`ALTER TABLE guarded_reject ENABLE TRIGGER es_direct_writes`);
    await es.rebuild(rejectModel.Guarded, entity.id);
    expect(await row(rejectModel, entity.id)).toMatchObject({ label: 'second', version: 2 });

    const [legacy, lazy] = await dataSource.query(`INSERT INTO guarded_reject (label, extra) VALUES ('legacy', '{"k": [1]}'), ('lazy', NULL) RETURNING id`);
    expect(await es.baseline(rejectModel.Guarded)).toEqual({ processed: 2, baselined: 2 });
    expect(await row(rejectModel, legacy.id)).toEqual({ id: legacy.id, label: 'legacy', extra: { k: [1] }, views: 0, version: 1 });
    const lazyEntity = await dataSource.manager.findOneByOrFail(rejectModel.Guarded, { id: lazy.id });
    await dataSource.manager.save(rejectModel.Relabelled.build({ aggregate: lazyEntity, label: 'adopted' }));
    expect(await row(rejectModel, lazy.id)).toMatchObject({ label: 'adopted', version: 2 });
    for (const id of [entity.id, legacy.id, lazy.id]) expect(await es.verify(rejectModel.Guarded, { id })).toEqual([]);
  });

  test('the trigger exists only for reject, and follows the sourced columns', async () => {
    const triggers = await dataSource.query(
      `SELECT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = 'es_direct_writes' ORDER BY 1`,
    );
    expect(triggers).toEqual([{ table: 'guarded_reject' }]);
    expect(es.schema.sql()).toContain('CREATE OR REPLACE FUNCTION "guarded_reject_es_guard"()');
  });
});

test('without onError, warnings go to process.emitWarning as DirectWriteWarning', async () => {
  const other = await testDataSource('direct_writes_default', guardedEntities);
  const otherEs = await EventSourcing.attach(other);
  // Observed, not replaced: Node still prints the warning.
  const emitted = jest.spyOn(process, 'emitWarning');
  try {
    const event = await other.manager.save(warnModel.Created.build({ label: 'x' }));
    await other.manager.update(warnModel.Guarded, { id: event.aggregateId }, { label: 'y' });
    expect(emitted.mock.calls).toEqual([
      [
        'GuardedWarn: update outside the event path writes label, which events decide: write an event (or a command) instead, or list columns events do not decide in @Aggregate({ exclude })',
        { type: 'DirectWriteWarning', code: 'DIRECT_WRITE' },
      ],
    ]);
  } finally {
    emitted.mockRestore();
    await otherEs.close();
    await other.destroy();
  }
});
