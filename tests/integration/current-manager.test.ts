import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import { EventSourcing, EventSourcingConfigError } from 'typeorm-event-sourcing';
import { ActivateSubscription, commandEntities } from '../support/command-models';
import { testDataSource } from '../support/database';
import { Subscription, SubscriptionCreated } from '../support/subscription-model';

/**
 * The `currentManager` option: es.append and commands called without a manager write in the
 * transaction it names (an ambient one, as @nestjs-cls/transactional keeps), and roll back with it.
 */

const ambient = new AsyncLocalStorage<EntityManager>();
let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource(`current_manager_${process.pid}`, commandEntities);
  es = await EventSourcing.attach(dataSource, { currentManager: () => ambient.getStore() });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

const counts = async () => (await dataSource.query('SELECT (SELECT count(*)::int FROM subscription) AS rows, (SELECT count(*)::int FROM subscription_events) AS events'))[0];

test('inside the ambient transaction both writes roll back with it; outside, each call commits on its own', async () => {
  const before = await counts();
  const failure = await dataSource
    .transaction((manager) =>
      ambient.run(manager, async () => {
        const created = await es.append(SubscriptionCreated.build({ userId: 1 }));
        const subscription = await manager.findOneByOrFail(Subscription, { id: created.aggregateId });
        await ActivateSubscription.call({ subscription, stripeKey: 'sub_ambient' });
        throw new Error('after both writes');
      }),
    )
    .catch((error: Error) => error.message);
  expect(failure).toBe('after both writes');
  expect(await counts()).toEqual(before);

  const created = await es.append(SubscriptionCreated.build({ userId: 2 }));
  expect(created.version).toBe(1);
  expect(await counts()).toEqual({ rows: before.rows + 1, events: before.events + 1 });
});

test('a manager of another DataSource, or an option that is not a function, is refused by name', async () => {
  const other = await testDataSource(`current_manager_other_${process.pid}`, commandEntities);
  try {
    await expect(ambient.run(other.manager, () => es.append(SubscriptionCreated.build({ userId: 3 })))).rejects.toThrow(
      new EventSourcingConfigError('the currentManager option returned an EntityManager of another DataSource than the one EventSourcing is attached to'),
    );
    await expect(EventSourcing.attach(other, { currentManager: 'manager' as never })).rejects.toThrow(
      'the currentManager option must be a function returning an EntityManager or undefined, not string',
    );
  } finally {
    await other.destroy();
  }
});
