import type { DataSource } from 'typeorm';
import { EventSourcing } from '../../src';
import { childProcessHooks } from '../support/child-hooks';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { onServer } from '../support/order-database';
import { ChildApp, waitFor } from '../support/processes';
import { advisoryLocks, createHandledTable, handledRows, HANDLED_TABLE, storedEvents } from '../support/projection-read-model';
import { Order, OrderNoted, OrderPlaced, orderEntities } from '../processes/model';

/**
 * Projection runners in child processes, SIGKILLed: once inside a batch's open transaction with
 * part of the batch handled, once as the lock holder of two runner processes. After a restart or a
 * takeover every event is handled exactly once (the read model's primary key refuses a second
 * handling, and the handled events are compared with the events tables), in (tx_id, position)
 * order, and only one runner works at a time.
 */

const BATCH = 50;
const NAME = 'orders-projected';

let dataSource: DataSource;
let es: EventSourcing;
let url: string;

childProcessHooks({
  setup: async () => {
    // The pid keeps two runs of the suite at once (a shared checkout) off each other's database.
    dataSource = await testDataSource(`reliability_projection_crash_${process.pid}`, orderEntities);
    url = (dataSource.options as { url: string }).url;
    es = await EventSourcing.attach(dataSource);
    await createHandledTable(dataSource);
  },
  teardown: async () => {
    await es?.close();
    if (dataSource?.isInitialized) await dataSource.destroy();
    if (url) await onServer(process.env.DATABASE_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`));
  },
});

beforeEach(async () => {
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  await dataSource.query(`DELETE FROM es_projections`);
});

/** One order placed, then `notes` notes on it: 1 + notes events. */
async function writeEvents(notes: number, writer: string): Promise<void> {
  const placed = await es.append(OrderPlaced.build({ number: 1 }));
  const order = await dataSource.manager.findOneByOrFail(Order, { id: placed.aggregateId });
  for (let seq = 0; seq < notes; seq += 1) await es.append(OrderNoted.build({ order, writer, seq }));
}

async function allEvents() {
  return storedEvents(dataSource, ['reliability_orders_events']);
}

/** The read model holds every event once, in (tx_id, position) order. */
async function expectEachOnceInOrder(): Promise<void> {
  const key = (row: { table: string; id: number }) => `${row.table}/${row.id}`;
  expect((await handledRows(dataSource)).map(key)).toEqual((await allEvents()).map(key));
}

async function checkpoint(): Promise<{ tx_id: string; position: string } | undefined> {
  return (await dataSource.query(`SELECT tx_id::text, position::text FROM es_projections WHERE name = $1`, [NAME]))[0];
}

async function start(runner: string, extra: Record<string, string> = {}): Promise<ChildApp> {
  const child = await ChildApp.start(runner, 'projection-app', { DATABASE_URL: url, RUNNER: runner, ...extra });
  await child.request({ cmd: 'run', batchSize: BATCH, pollInterval: 50 });
  return child;
}

test('a runner SIGKILLed inside a batch: the batch leaves nothing, the checkpoint stays at its start; after a restart every event is handled exactly once', async () => {
  await writeEvents(299, 'before'); // 300 events: six batches
  // The third batch stops after 30 of its events, in its open transaction.
  const first = await start('first', { PAUSE_AT: String(2 * BATCH + 30) });
  await waitFor('the pause inside the third batch', async () => first.messages.find((message) => message.type === 'paused'), 20_000, 20);
  await first.kill('SIGKILL');
  recordFigure('projection runners killed', 1);

  const handled = await handledRows(dataSource);
  const events = await allEvents();
  expect(handled.map((row) => row.id)).toEqual(events.slice(0, 2 * BATCH).map((row) => row.id));
  expect(await checkpoint()).toEqual({ tx_id: String(events[2 * BATCH - 1].txId), position: String(events[2 * BATCH - 1].position) });

  // Writes go on while nobody runs it, and during the restart.
  await writeEvents(49, 'between');
  const second = await start('second');
  await writeEvents(49, 'during');
  const total = (await allEvents()).length;
  await waitFor('every event handled', async () => (await handledRows(dataSource)).length === total, 30_000, 50);
  expect(await second.request({ cmd: 'stop' })).toMatchObject({ type: 'stopped', processed: total - 2 * BATCH });
  await second.request({ cmd: 'close' });
  await second.waitForExit(10_000);
  await expectEachOnceInOrder();
  expect(second.errors).toEqual([]);
  const events2 = await allEvents();
  expect(await checkpoint()).toEqual({ tx_id: String(events2.at(-1)!.txId), position: String(events2.at(-1)!.position) });
  recordFigure('projection events handled', total);
  recordFigure('projection events lost', total - (await handledRows(dataSource)).length);
});

test('two runner processes: only the lock holder handles events; SIGKILLed mid-batch, the other takes over and every event is handled exactly once', async () => {
  await writeEvents(59, 'before');
  // Slow handlers, so a kill lands inside a batch.
  const one = await start('one', { HANDLER_DELAY_MS: '5' });
  const two = await start('two', { HANDLER_DELAY_MS: '5' });
  const initial = (await allEvents()).length;
  await waitFor('the events written before', async () => (await handledRows(dataSource)).length === initial, 30_000, 20);
  const holder = (await handledRows(dataSource))[0].by;
  // One lock between the two, and only the holder worked.
  expect(await advisoryLocks(dataSource)).toHaveLength(1);
  expect(new Set((await handledRows(dataSource)).map((row) => row.by))).toEqual(new Set([holder]));
  const [killed, survivor] = holder === 'one' ? [one, two] : [two, one];

  // New events, and the holder killed while it works through them.
  const writing = writeEvents(149, 'live');
  await waitFor('the holder to be handling the new events', async () => (await handledRows(dataSource)).length > initial + 20, 30_000, 5);
  await killed.kill('SIGKILL');
  recordFigure('projection runners killed', 1);
  await writing;
  const total = (await allEvents()).length;
  await waitFor('the survivor to handle the rest', async () => (await handledRows(dataSource)).length === total, 30_000, 50);
  await expectEachOnceInOrder();
  const handled = await handledRows(dataSource);
  // The holder's events first, then the survivor's: they never took turns.
  const firstOfSurvivor = handled.findIndex((row) => row.by === survivor.name);
  expect(firstOfSurvivor).toBeGreaterThan(initial);
  expect(handled.slice(0, firstOfSurvivor).every((row) => row.by === killed.name)).toBe(true);
  expect(handled.slice(firstOfSurvivor).every((row) => row.by === survivor.name)).toBe(true);
  expect(await advisoryLocks(dataSource)).toHaveLength(1);
  await survivor.request({ cmd: 'stop' });
  await survivor.request({ cmd: 'close' });
  await survivor.waitForExit(10_000);
  expect(survivor.errors).toEqual([]);
  recordFigure('projection events handled', total);
});
