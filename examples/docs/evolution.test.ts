// #region imports
import 'reflect-metadata';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { DataSource } from 'typeorm';
import { EventSourcing, RetiredEventTypeError } from 'typeorm-event-sourcing';
import { createTestDatabase, upcast, type TestDatabase } from 'typeorm-event-sourcing/testing';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated, SubscriptionPaused } from './evolution-model';
// #endregion imports

// docs/event-evolution.md: rows of release 1 read by the code of a later release, run by this
// repository's suite.

let database: TestDatabase;
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  database = await createTestDatabase();
  dataSource = new DataSource({ type: 'postgres', url: database.url, entities, synchronize: true });
  await dataSource.initialize();
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es.close();
  await dataSource.destroy();
  await database.drop();
});

test('rows of release 1 read as the current class, and are never rewritten', async () => {
  const created = await es.append(SubscriptionCreated.build({ userId: 7 }));
  // What release 1 wrote: the old name, data of version 1.
  await dataSource.query(
    `INSERT INTO subscription_events (subscription_id, version, type, schema_version, data, metadata, created_at)
     VALUES ($1, 2, 'Subscription.Started', 1, '{"stripeKey": "sub_66123"}', '{}', now())`,
    [created.aggregateId],
  );
  await es.rebuild(Subscription, created.aggregateId);

  // #region read-old-rows
  const [, activated] = await es.history(Subscription, created.aggregateId);
  activated instanceof SubscriptionActivated; // true: the alias loads as the renamed class
  activated.type; // 'Subscription.Activated'
  activated.schemaVersion; // 1: the row's version, kept as stored
  (activated as SubscriptionActivated).plan; // 'basic': upcast on read
  // #endregion read-old-rows
  expect(activated).toBeInstanceOf(SubscriptionActivated);
  expect([activated.type, activated.schemaVersion, (activated as SubscriptionActivated).plan]).toEqual(['Subscription.Activated', 1, 'basic']);
  expect(await dataSource.query('SELECT type, schema_version, data FROM subscription_events WHERE version = 2')).toEqual([
    { type: 'Subscription.Started', schema_version: 1, data: { stripeKey: 'sub_66123' } },
  ]);

  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  expect(subscription).toMatchObject({ status: 'active', plan: 'basic' });
  const next = await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_7', plan: 'pro' }));
  expect(await dataSource.query('SELECT type, schema_version FROM subscription_events WHERE id = $1', [next.id])).toEqual([
    { type: 'Subscription.Activated', schema_version: 2 },
  ]);
  expect(() => SubscriptionPaused.build({ subscription, reason: 'holiday' })).toThrow(RetiredEventTypeError);
  expect(await es.verify(Subscription)).toEqual([]);
});

// #region upcast-test
test('a version 1 row reads with the basic plan', () => {
  const event = upcast(SubscriptionActivated, { stripeKey: 'sub_66123' }, 1);
  expect(event.plan).toBe('basic');
  expect(event.stripeKey).toBe('sub_66123');
});
// #endregion upcast-test
