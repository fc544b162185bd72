import type { DataSource } from 'typeorm';
import {
  BaselineMismatchError,
  EventSourcing,
  EventSourcingConfigError,
  MissingBaselineError,
  ValidationError,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import {
  LegacyAccount,
  LegacyAccountImported,
  LegacyAccountRenamed,
  LegacyCustomer,
  legacyEntities,
  LegacyNote,
  LegacyNoteEdited,
  RenameLegacyAccount,
} from '../support/legacy-models';

/**
 * Rows from before a model was sourced (version 0, no events): baselines, lazy adoption, and
 * replays that refuse to lose their data.
 */
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('baseline', legacyEntities);
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
});

/** Rows as the CRUD application wrote them, before any event: plain INSERTs, version 0. */
async function legacyAccounts(count: number): Promise<number[]> {
  const [customer] = await dataSource.query(`INSERT INTO legacy_customer (name) VALUES ('Ada') RETURNING id`);
  const rows = await dataSource.query(
    `INSERT INTO legacy_account (name, nickname, balance, "externalRef", "closedAt", settings, "customerId", "createdAt", "updatedAt")
     SELECT 'account ' || n, CASE WHEN n % 3 = 0 THEN NULL ELSE 'nick ' || n END, (n * 1.25)::numeric(12,2),
            CASE WHEN n % 2 = 0 THEN (9007199254740993 + n)::bigint ELSE NULL END,
            CASE WHEN n % 4 = 0 THEN timestamptz '2020-02-29 12:34:56.789+00' + n * interval '1 day' ELSE NULL END,
            jsonb_build_object('n', n, 'tags', jsonb_build_array('a', n)), CASE WHEN n % 5 = 0 THEN NULL ELSE $1::int END,
            timestamptz '2015-06-01 00:00:00+00' + n * interval '1 hour', timestamptz '2019-01-01 00:00:00+00'
     FROM generate_series(1, $2::int) AS n RETURNING id`,
    [customer.id, count],
  );
  return rows.map((row: { id: number }) => row.id);
}

async function rawRow(table: string, id: number): Promise<Record<string, unknown>> {
  const [row] = await dataSource.query(`SELECT * FROM ${table} WHERE id = $1`, [id]);
  return row;
}

async function eventCount(table: string): Promise<number> {
  const [{ n }] = await dataSource.query(`SELECT count(*)::int AS n FROM ${table}`);
  return n;
}

describe('es.baseline', () => {
  test('verify lists rows without events as noEvents; baseline writes one event per row, keeps every byte, and a second run writes nothing', async () => {
    const ids = await legacyAccounts(120);
    const before = await Promise.all(ids.map((id) => rawRow('legacy_account', id)));
    const noEvents = await es.verify(LegacyAccount);
    expect(noEvents).toHaveLength(120);
    expect(noEvents[0]).toEqual({ reason: 'noEvents', id: ids[0], column: 'version', stored: 0, replayed: 0 });

    const progress: unknown[] = [];
    expect(await es.baseline(LegacyAccount, { batchSize: 50, onProgress: (p) => progress.push(p) })).toEqual({ processed: 120, baselined: 120 });
    expect(progress).toEqual([
      { processed: 50, total: 120, baselined: 50 },
      { processed: 100, total: 120, baselined: 100 },
      { processed: 120, total: 120, baselined: 120 },
    ]);
    const after = await Promise.all(ids.map((id) => rawRow('legacy_account', id)));
    // Every column as it was, updatedAt included; only the version moved, to 1.
    expect(after).toEqual(before.map((row) => ({ ...row, version: 1 })));
    expect(await es.verify(LegacyAccount)).toEqual([]);

    const [event] = await es.history(LegacyAccount, ids[3]);
    expect(event).toBeInstanceOf(LegacyAccountImported);
    expect(event.version).toBe(1);
    // The row's create date, so the time machine sees the row from its creation.
    expect(event.createdAt).toEqual(before[3].createdAt);
    expect(await es.stateAt(LegacyAccount, ids[3], { at: new Date(before[3].createdAt as Date) })).toMatchObject({ name: 'account 4', version: 1 });
    expect(await es.stateAt(LegacyAccount, ids[3], { at: new Date((before[3].createdAt as Date).getTime() - 1) })).toBeNull();

    // Replay gives back the row exactly: rebuild changes nothing.
    expect(await es.rebuildAll(LegacyAccount)).toMatchObject({ processed: 120, rebuilt: 0 });
    expect(await es.baseline(LegacyAccount)).toEqual({ processed: 0, baselined: 0 });
    expect(await eventCount('legacy_account_events')).toBe(120);
  });

  test('the foreign key declared as its own column is sourced: verify sees it, rebuild restores it', async () => {
    const [id] = await legacyAccounts(1);
    await es.baseline(LegacyAccount);
    const [other] = await dataSource.query(`INSERT INTO legacy_customer (name) VALUES ('Grace') RETURNING id`);
    await dataSource.query(`UPDATE legacy_account SET "customerId" = $1 WHERE id = $2`, [other.id, id]);
    const [mismatch] = await es.verify(LegacyAccount, { id });
    expect(mismatch).toMatchObject({ reason: 'drift', id, column: 'customerId', stored: other.id });
    await es.rebuild(LegacyAccount, id);
    expect(await es.verify(LegacyAccount, { id })).toEqual([]);
    expect((await dataSource.manager.findOneByOrFail(LegacyAccount, { id })).customerId).not.toBe(other.id);
  });

  test('a baseline that does not reproduce its row: BaselineMismatchError naming the column, that batch rolled back', async () => {
    const [id] = await legacyAccounts(1);
    const original = Object.getOwnPropertyDescriptor(LegacyAccountImported.prototype, 'apply')!;
    LegacyAccountImported.prototype.apply = function (this: LegacyAccountImported, account: LegacyAccount) {
      original.value.call(this, account);
      account.nickname = 'lost';
      return account;
    };
    try {
      const error = (await es.baseline(LegacyAccount).catch((caught: unknown) => caught)) as BaselineMismatchError;
      expect(error).toBeInstanceOf(BaselineMismatchError);
      expect(error.message).toMatch(new RegExp(`^LegacyAccount ${id}: its baseline LegacyAccount.Imported does not reproduce the row: nickname is "nick 1" in the row but "lost" after replay$`));
      expect(await rawRow('legacy_account', id)).toMatchObject({ version: 0, nickname: 'nick 1' });
    } finally {
      Object.defineProperty(LegacyAccountImported.prototype, 'apply', original);
    }
    await es.baseline(LegacyAccount);
    expect(await rawRow('legacy_account', id)).toMatchObject({ version: 1, nickname: 'nick 1' });
  });

  test('an aggregate without a declared baseline: MissingBaselineError, nothing written', async () => {
    await dataSource.query(`INSERT INTO legacy_note (body) VALUES ('old'), ('older')`);
    await expect(es.baseline(LegacyNote)).rejects.toThrow(
      new MissingBaselineError(
        'LegacyNote',
        undefined,
        '2 rows hold data from before LegacyNote was sourced (version 0, no events) and LegacyNote declares no baseline: declare @Aggregate({ baseline: (row) => ... }) to say how such a row becomes its first event (docs/migrating-crud-models.md)',
      ),
    );
    await expect(es.baseline(LegacyAccount, { batchSize: 0 })).rejects.toThrow('es.baseline(LegacyAccount): batchSize must be a positive integer, got 0');
    await dataSource.query(`DELETE FROM legacy_note`);
  });
});

describe('lazy adoption', () => {
  test('the first event on a row without events is preceded by its baseline in the same transaction: versions 1 and 2', async () => {
    const [id] = await legacyAccounts(1);
    const account = await dataSource.manager.findOneByOrFail(LegacyAccount, { id });
    const before = await rawRow('legacy_account', id);
    const renamed = await dataSource.manager.save(LegacyAccountRenamed.build({ legacyAccount: account, name: 'renamed' }));
    expect(renamed.version).toBe(2);
    expect(account).toMatchObject({ name: 'renamed', version: 2 });
    expect((await es.history(LegacyAccount, id)).map((event) => [event.type, event.version])).toEqual([
      ['LegacyAccount.Imported', 1],
      ['LegacyAccount.Renamed', 2],
    ]);
    expect(await es.stateAt(LegacyAccount, id, { version: 1 })).toMatchObject({ name: before.name, nickname: before.nickname, version: 1 });
    expect(await es.verify(LegacyAccount, { id })).toEqual([]);
  });

  test('through Command.call, with the version the caller loaded (0) as the expected one', async () => {
    const [id] = await legacyAccounts(1);
    const legacyAccount = await dataSource.manager.findOneByOrFail(LegacyAccount, { id });
    const event = await RenameLegacyAccount.call({ legacyAccount, name: 'by command' });
    expect(event!.version).toBe(2);
    await expect(RenameLegacyAccount.call({ legacyAccount, name: '' })).rejects.toThrow(ValidationError);
    expect(await RenameLegacyAccount.call({ legacyAccount, name: 'by command' })).toBeNull();
    expect(await es.verify(LegacyAccount, { id })).toEqual([]);
  });

  test('a rolled-back first event leaves no baseline behind', async () => {
    const [id] = await legacyAccounts(1);
    const account = await dataSource.manager.findOneByOrFail(LegacyAccount, { id });
    await expect(
      dataSource.transaction(async (manager) => {
        await manager.save(LegacyAccountRenamed.build({ legacyAccount: account, name: 'doomed' }));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(account).toMatchObject({ name: 'account 1', version: 0 });
    expect(await rawRow('legacy_account', id)).toMatchObject({ name: 'account 1', version: 0 });
    expect(await es.history(LegacyAccount, id)).toEqual([]);
  });

  test('without a declared baseline: MissingBaselineError saying how to declare one; row and caller untouched', async () => {
    const [{ id }] = await dataSource.query(`INSERT INTO legacy_note (body) VALUES ('from the CRUD days') RETURNING id`);
    const note = await dataSource.manager.findOneByOrFail(LegacyNote, { id });
    const error = (await dataSource.manager.save(LegacyNoteEdited.build({ legacyNote: note, body: 'edited' })).catch((caught: unknown) => caught)) as MissingBaselineError;
    expect(error).toBeInstanceOf(MissingBaselineError);
    expect(error).toMatchObject({ code: 'MISSING_BASELINE', aggregateType: 'LegacyNote', aggregateId: id });
    expect(error.message).toBe(
      `LegacyNote ${id}: the row holds data from before LegacyNote was sourced (version 0, no events) and LegacyNote declares no baseline: declare @Aggregate({ baseline: (row) => ... }) to say how such a row becomes its first event (docs/migrating-crud-models.md)`,
    );
    expect(note).toMatchObject({ body: 'from the CRUD days', version: 0 });
    expect(await rawRow('legacy_note', id)).toEqual({ id, body: 'from the CRUD days', version: 0 });
    expect(await eventCount('legacy_note_events')).toBe(0);
  });
});

describe('replays never destroy data', () => {
  test('a history that does not begin with a creating event: rebuild, rebuildAll and stateAt raise MissingBaselineError; the row stays', async () => {
    const [{ id }] = await dataSource.query(`INSERT INTO legacy_note (body, version) VALUES ('precious', 1) RETURNING id`);
    // A history as an older version of the library wrote it: the first event onto a legacy row.
    await dataSource.query(
      `INSERT INTO legacy_note_events (type, version, data, metadata, created_at, legacy_note_id) VALUES ('LegacyNote.Edited', 1, '{"body": "edited"}', '{}', now(), $1)`,
      [id],
    );
    await dataSource.query(`UPDATE legacy_note SET body = 'edited, then typed over' WHERE id = $1`, [id]);
    const message = `LegacyNote ${id}: its history begins with LegacyNote.Edited (version 1), which does not create it: the row held data before that event that no event records, so replaying would lose it. Nothing was changed; declare a baseline for such rows (@Aggregate({ baseline })) for new ones, and see docs/migrating-crud-models.md`;
    await expect(es.rebuild(LegacyNote, id)).rejects.toThrow(new MissingBaselineError('LegacyNote', id, message.slice(`LegacyNote ${id}: `.length)));
    await expect(es.rebuildAll(LegacyNote)).rejects.toThrow(MissingBaselineError);
    await expect(es.stateAt(LegacyNote, id, { version: 1 })).rejects.toThrow(message);
    expect(await rawRow('legacy_note', id)).toEqual({ id, body: 'edited, then typed over', version: 1 });
    // verify still reports, and does not throw.
    expect(await es.verify(LegacyNote, { id })).toEqual([{ reason: 'drift', id, column: 'body', stored: 'edited, then typed over', replayed: 'edited' }]);
  });
});

describe('models that cannot be sourced are refused at attach', () => {
  test('a composite primary key, and an existing @VersionColumn', async () => {
    const { compositeEntities, versionColumnEntities } = await import('../support/unsourceable-models');
    for (const [entities, message] of [
      [compositeEntities, 'TwoKeys must have exactly one primary column to have events (it has 2: tenant, id): each events table row points at its aggregate with one foreign key column'],
      [
        versionColumnEntities,
        'Locked.lockVersion is a @VersionColumn: TypeORM raises it on every save(), while an aggregate\'s version counts its events; replace it with @AggregateVersion() or remove it',
      ],
    ] as const) {
      const other = await testDataSource(`baseline_refused_${entities.length}`, [...entities]);
      try {
        await expect(EventSourcing.attach(other)).rejects.toThrow(new EventSourcingConfigError(message));
      } finally {
        await other.destroy();
      }
    }
  });
});

test('LegacyCustomer stays a plain CRUD entity', async () => {
  const saved = await dataSource.manager.save(LegacyCustomer, { name: 'plain' });
  expect(await dataSource.manager.findOneByOrFail(LegacyCustomer, { id: saved.id })).toEqual({ id: saved.id, name: 'plain' });
});

describe('reactors and baselines', () => {
  test('no reactor runs for baselines, unless { dispatch: true }: then trigger reactors in the batch, async ones through the outbox', async () => {
    const { Dispatcher } = await import('typeorm-event-sourcing');
    const { waitForReactors } = await import('typeorm-event-sourcing/testing');
    const triggered: number[] = [];
    const mailed: number[] = [];
    const dispatcher = new Dispatcher()
      .on(LegacyAccountImported, { trigger: (event) => void triggered.push(event.aggregateId), name: 'CountImported' })
      .on(LegacyAccountImported, { async: (event) => void mailed.push(event.aggregateId), name: 'WelcomeImported' });
    const other = await testDataSource('baseline_dispatch', legacyEntities);
    const otherEs = await EventSourcing.attach(other, {
      dispatcher,
      queue: { connection: process.env.REDIS_URL!, relay: { interval: 50, grace: 0 } },
    });
    const worker = otherEs.worker();
    try {
      const insert = (from: number) =>
        other.query(`INSERT INTO legacy_account (name, balance) SELECT 'a' || n, 1 FROM generate_series($1::int, $1::int + 2) n RETURNING id`, [from]);
      const quiet = (await insert(1)).map((row: { id: number }) => row.id);
      expect(await otherEs.baseline(LegacyAccount)).toEqual({ processed: 3, baselined: 3 });
      const dispatched = (await insert(10)).map((row: { id: number }) => row.id);
      expect(await otherEs.baseline(LegacyAccount, { dispatch: true })).toEqual({ processed: 3, baselined: 3 });
      expect(triggered).toEqual(dispatched);
      await waitForReactors(otherEs, { timeout: 15_000 });
      expect([...mailed].sort((a, b) => a - b)).toEqual(dispatched);
      expect(quiet.some((id: number) => mailed.includes(id) || triggered.includes(id))).toBe(false);
    } finally {
      await worker.close();
      await otherEs.close();
      await other.destroy();
    }
  });
});
