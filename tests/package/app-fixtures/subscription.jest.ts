// A jest file as docs/testing.md shows it; the pack test installs it as subscription.test.ts.
import 'reflect-metadata';
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { createTestDatabase, eventMatchers, resetEventStore, type TestDatabase } from 'typeorm-event-sourcing/testing';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

expect.extend(eventMatchers);

let database: TestDatabase;
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  database = await createTestDatabase({ name: process.env.TEST_DATABASE_NAME });
  dataSource = new DataSource({ type: 'postgres', url: database.url, entities, synchronize: true });
  await dataSource.initialize();
  es = await EventSourcing.attach(dataSource);
});
afterEach(() => resetEventStore(es));
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
  await database.drop();
});

test('toHaveEmitted from @jest/globals passes on the emitted event', async () => {
  const created = await dataSource.manager.save(SubscriptionCreated.build({}));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }));
  expect(activated).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_1' });
  expect(activated).not.toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_2' });
  expect(subscription.status).toBe('active');
});

test('toHaveEmitted fails with what was emitted', async () => {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ note: 'n' }));
  expect(() => expect(created).toHaveEmitted(SubscriptionActivated)).toThrow("expected event like { type: 'Subscription.Activated' }");
});

test('resetEventStore emptied the tables, in the database of this file', async () => {
  expect(await dataSource.manager.count(Subscription)).toBe(0);
  expect(await dataSource.query('SELECT current_database() AS name')).toEqual([{ name: database.name }]);
});
