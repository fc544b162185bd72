// #region imports
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { createTestDatabase, eventMatchers, resetEventStore, type TestDatabase } from 'typeorm-event-sourcing/testing';
import { ActivateSubscription } from '../subscriptions/commands';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports
import { activationScenarios, wrongExpectation } from './testing';

// docs/testing.md: a jest file as a project writes it, run by this repository's suite.

// #region setup
expect.extend(eventMatchers); // adds expect(...).toHaveEmitted(EventClass, data?)

let database: TestDatabase;
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  database = await createTestDatabase(); // <DATABASE_URL's database>_test_<jest worker id>, empty
  dataSource = new DataSource({ type: 'postgres', url: database.url, entities, synchronize: true });
  await dataSource.initialize();
  es = await EventSourcing.attach(dataSource);
});
afterEach(() => resetEventStore(es)); // empties aggregate, events and outbox tables
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
  await database.drop();
});
// #endregion setup

test('the scenarios pass', async () => {
  await activationScenarios();
});

test('a wrong expectation fails with a readable diff', async () => {
  await expect(wrongExpectation()).rejects.toThrow(/\+ actual - expected[\s\S]*\+\s+stripeKey: 'sub_66123'[\s\S]*-\s+stripeKey: 'sub_99999'/);
});

test('the matcher', async () => {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  // #region matcher
  const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
  expect(result).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_66123' });
  expect(result).not.toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_1' });
  // #endregion matcher
});

test('resetEventStore left nothing from the previous case', async () => {
  expect(await dataSource.manager.count(Subscription)).toBe(0);
});

test("the DataSource is on the jest worker's own database", async () => {
  expect(database.name).toBe(`${new URL(process.env.DATABASE_URL!).pathname.slice(1)}_test_${process.env.JEST_WORKER_ID}`);
  expect(await dataSource.query('SELECT current_database() AS name')).toEqual([{ name: database.name }]);
});
