import type { DataSource } from 'typeorm';
import { EventSourcing, Projection, type AggregateEvent } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { horizonPassed } from '../support/projection-read-model';
import { ReplayLedger, ReplayLedgerCredited, ReplayLedgerOpened, replayLedgerEntities } from '../support/replay-models';
import { SubscriptionCreated, subscriptionEntities } from '../support/subscription-model';

/**
 * es.projections.status(): each projection's checkpoint, lag in events and seconds, last error
 * and update time, for the projections this instance was given and the rows of es_projections.
 */

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('projections_status', [...subscriptionEntities, ...replayLedgerEntities]);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('lag in events and seconds before and after catchUp, across two events tables, counting only the types handled; the checkpoint is the last event handled', async () => {
  const counted = new Projection('counted').on([SubscriptionCreated, ReplayLedgerCredited], () => undefined);
  // Registered without handling anything: a run stopped before it starts.
  const stopped = new AbortController();
  stopped.abort();
  await es.projections.run(counted, { signal: stopped.signal });
  expect(await es.projections.status()).toEqual([{ name: 'counted', checkpoint: null, lag: { events: 0, seconds: 0 }, lastError: null, updatedAt: expect.any(Date) }]);

  const written: AggregateEvent[] = [await es.append(SubscriptionCreated.build({ userId: 1 }))];
  const ledger = await es.append(ReplayLedgerOpened.build({ owner: 'ada' })); // not a type it handles
  const replayLedger = await dataSource.manager.findOneByOrFail(ReplayLedger, { id: ledger.aggregateId });
  written.push(await es.append(ReplayLedgerCredited.build({ replayLedger, amount: 5, memo: 'five' })));
  written.push(await es.append(SubscriptionCreated.build({ userId: 2 })));
  await sleep(400);

  const [before] = await es.projections.status();
  expect(before.checkpoint).toBeNull();
  expect(before.lag!.events).toBe(3);
  // The oldest of them was written at least 400 ms ago.
  expect(before.lag!.seconds).toBeGreaterThanOrEqual(0.39);
  expect(before.lag!.seconds).toBeLessThan(30);

  await horizonPassed(dataSource);
  expect(await es.projections.catchUp(counted)).toEqual({ processed: 3 });
  const [after] = await es.projections.status();
  const last = written.at(-1)!;
  expect(after).toEqual({ name: 'counted', checkpoint: { txId: last.txId, position: last.position }, lag: { events: 0, seconds: 0 }, lastError: null, updatedAt: expect.any(Date) });
  expect(after.updatedAt!.getTime()).toBeGreaterThanOrEqual(before.updatedAt!.getTime());

  // One more: lag 1, and the checkpoint has not moved.
  const next = await es.append(SubscriptionCreated.build({ userId: 3 }));
  const [behind] = await es.projections.status();
  expect(behind.lag!.events).toBe(1);
  expect(behind.checkpoint).toEqual(after.checkpoint);
  await horizonPassed(dataSource);
  await es.projections.catchUp(counted);
  expect((await es.projections.status())[0].checkpoint).toEqual({ txId: next.txId, position: next.position });
});

test('status lists the rows of es_projections, also of projections this instance was not given (lag unknown), merged with its own, by name', async () => {
  // A projection run by another process: only its row is known here.
  await dataSource.query(`INSERT INTO es_projections (name, tx_id, position) VALUES ('elsewhere', 1, 1)`);
  const mine = new Projection('a-mine').on(SubscriptionCreated, () => undefined);
  await horizonPassed(dataSource);
  await es.projections.catchUp(mine);
  const statuses = await es.projections.status();
  expect(statuses.map((status) => status.name)).toEqual(['a-mine', 'counted', 'elsewhere']);
  expect(statuses[2]).toEqual({ name: 'elsewhere', checkpoint: { txId: 1, position: 1 }, lag: null, lastError: null, updatedAt: expect.any(Date) });
  expect(statuses[0].lag).toEqual({ events: 0, seconds: 0 });

  // A row deleted (a projection to start over): the projection starts from the first event again.
  await dataSource.query(`DELETE FROM es_projections WHERE name = 'a-mine'`);
  const fresh = (await es.projections.status()).find((status) => status.name === 'a-mine')!;
  expect(fresh).toEqual({ name: 'a-mine', checkpoint: null, lag: { events: 3, seconds: expect.any(Number) }, lastError: null, updatedAt: null });
  expect(await es.projections.catchUp(mine)).toEqual({ processed: 3 });
});

test('es.schema creates es_projections idempotently and drops it', async () => {
  const exists = async () => (await dataSource.query(`SELECT to_regclass('es_projections') IS NOT NULL AS "exists"`))[0].exists;
  await es.schema.create();
  expect(es.schema.sql()).toContain('CREATE TABLE IF NOT EXISTS es_projections');
  expect(await exists()).toBe(true);
  await es.schema.drop();
  expect(await exists()).toBe(false);
  await expect(es.projections.catchUp(new Projection('no-table').on(SubscriptionCreated, () => undefined))).rejects.toThrow(
    /the table es_projections is missing: create the library's schema with es.schema.create\(\) or a migration/,
  );
  await es.schema.create();
  expect(await exists()).toBe(true);
});
