import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { Subscription, SubscriptionActivated, SubscriptionCreated, subscriptionEntities } from '../support/subscription-model';

let dataSource: DataSource;
let es: EventSourcing;
beforeAll(async () => {
  dataSource = await testDataSource('smoke', subscriptionEntities, { logging: ['query', 'error'] });
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

test('smoke', async () => {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 7 }));
  console.log(created);
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }));
  console.log(activated, subscription);
  console.log(await es.history(Subscription, subscription.id));
});
