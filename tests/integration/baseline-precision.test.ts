import type { DataSource } from 'typeorm';
import { BaselineMismatchError, EventSourcing } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { LegacyAccount, legacyEntities } from '../support/legacy-models';

/**
 * Values that JavaScript reads with less precision than PostgreSQL stores: a baseline must record
 * them exactly (so a rebuild gives the row back) or refuse (BaselineMismatchError); it refuses.
 */
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('baseline_precision', legacyEntities);
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
});

test.each([
  ['a timestamptz with microseconds (now() in a CRUD default)', `"closedAt" = NULL`, `'{}'`, `'2020-01-01 00:00:00.123456+00'`, 'closedAt is "2020-01-01 00:00:00.123456+00" in the row but "2020-01-01 00:00:00.123+00" after replay'],
  ['a jsonb integer above 2^53', `settings = '{}'`, `'{"big": 9007199254740993}'`, 'NULL', 'settings is "{\\"big\\": 9007199254740993}" in the row but "{\\"big\\": 9007199254740992}" after replay'],
  ['a jsonb numeric with a trailing zero', `settings = '{}'`, `'{"price": 1234.50}'`, 'NULL', 'settings is "{\\"price\\": 1234.50}" in the row but "{\\"price\\": 1234.5}" after replay'],
])('%s: the baseline refuses, naming the column, and writes nothing', async (_, drift, settings, closedAt, named) => {
  const [{ id }] = await dataSource.query(
    `INSERT INTO legacy_account (name, balance, settings, "closedAt") VALUES ('precise', 1, ${settings}, ${closedAt}) RETURNING id`,
  );
  // The columns' text as PostgreSQL prints it; updatedAt is left out, since a rebuild is a write.
  const text = async () =>
    (await dataSource.query(`SELECT coalesce("closedAt"::text, 'null') || ' ' || settings::text AS text FROM legacy_account WHERE id = $1`, [id]))[0].text;
  const before = await text();
  const refused = (await es.baseline(LegacyAccount).catch((error: Error) => error)) as Error;
  expect(refused).toBeInstanceOf(BaselineMismatchError);
  expect(refused.message).toContain(`LegacyAccount ${id}: its baseline LegacyAccount.Imported does not reproduce the row: ${named}`);
  expect(refused.message).toMatch(/JavaScript cannot hold these values exactly .*date_trunc\('milliseconds', \.\.\.\) for timestamps\), or exclude the column$/);
  expect(await text()).toBe(before);
  expect(await dataSource.query(`SELECT version FROM legacy_account WHERE id = $1`, [id])).toEqual([{ version: 0 }]);
  // Rounded in the table, as the message says, the row is baselined exactly and survives a rebuild.
  await dataSource.query(`UPDATE legacy_account SET "closedAt" = date_trunc('milliseconds', "closedAt"), settings = '{}' WHERE id = $1`, [id]);
  await es.baseline(LegacyAccount);
  const rounded = await text();
  await dataSource.query(`UPDATE legacy_account SET ${drift}, name = 'drifted' WHERE id = $1`, [id]);
  await es.rebuild(LegacyAccount, id);
  expect(await text()).toBe(rounded);
  expect(await es.verify(LegacyAccount, { id })).toEqual([]);
});
