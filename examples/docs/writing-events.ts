// #region imports
import type { DataSource } from 'typeorm';
import { ConcurrencyError, EventApplyError, type EventSourcing } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

/** docs/concepts.md: the ways to write events. Returns what the docs say happens. */
export async function run(dataSource: DataSource, es: EventSourcing) {
  // #region create
  // An event type declared { creates: true }, built without an aggregate, creates one (version 1).
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  // #endregion create

  // #region activate
  const activated = await dataSource.manager.save(
    SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }),
  );
  subscription.status; // 'active': the caller's instance reflects the new state
  subscription.version; // 2, and activated.version is 2 too
  // #endregion activate
  const afterActivation = { status: subscription.status, version: subscription.version, eventVersion: activated.version };

  // #region expected-version
  let conflict: ConcurrencyError | undefined;
  try {
    // The caller believes the subscription is still at version 1: nothing is written.
    await es.append(SubscriptionCancelled.build({ subscription, reason: 'moving' }), { expectedVersion: 1 });
  } catch (error) {
    if (!(error instanceof ConcurrencyError)) throw error;
    conflict = error; // "Subscription 1: expected version 1, but it is at version 2"
  }
  // #endregion expected-version

  // #region transaction
  // Several events in one transaction: all of them are written, or none.
  await dataSource.transaction(async (manager) => {
    await manager.save(SubscriptionCancelled.build({ subscription, reason: 'moving' }));
    await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_77000' }));
  });
  // #endregion transaction

  // #region apply-error
  await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'moving' }));
  let failed: EventApplyError | undefined;
  try {
    // Cancelling twice: apply throws, nothing is written, `subscription` keeps its state.
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'again' }));
  } catch (error) {
    if (!(error instanceof EventApplyError)) throw error;
    failed = error;
  }
  // #endregion apply-error

  return { afterActivation, conflict: conflict?.message, final: { status: subscription.status, version: subscription.version }, failed: failed?.message };
}
