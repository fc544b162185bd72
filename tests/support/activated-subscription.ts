import type { DataSource } from 'typeorm';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './subscription-model';

/** A new subscription and its activation, written through the plain write path; resolves to the activation. */
export async function activateNewSubscription(dataSource: DataSource, stripeKey: string): Promise<SubscriptionActivated> {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  return dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey }));
}
