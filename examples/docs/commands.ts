// #region imports
import type { DataSource } from 'typeorm';
import { ConcurrencyError, ValidationError } from 'typeorm-event-sourcing';
import { ActivateSubscription, CancelSubscription, CreateSubscription } from '../subscriptions/commands';
import { Subscription } from '../subscriptions/model';
// #endregion imports

/** docs/commands.md: calling commands and what comes back. */
export async function run(dataSource: DataSource) {
  const created = await CreateSubscription.call({ userId: 1 });
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created!.aggregateId });

  // #region call
  const event = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } });
  // event: the saved SubscriptionActivated; subscription.status is 'active'

  const again = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
  // again: null, a no-op writes nothing
  // #endregion call

  // #region validation
  let invalid: ValidationError | undefined;
  try {
    await ActivateSubscription.call({ subscription, stripeKey: '' });
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    invalid = error; // "ActivateSubscription is invalid: stripeKey should not be empty"
    invalid.issues; // [{ attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } }]
  }
  // #endregion validation

  // #region expected-version
  let conflict: ConcurrencyError | undefined;
  try {
    // The caller read version 1 and insists on it: never retried.
    await CancelSubscription.call({ subscription, reason: 'moving' }, { expectedVersion: 1 });
  } catch (error) {
    if (!(error instanceof ConcurrencyError)) throw error;
    conflict = error;
  }
  // #endregion expected-version

  // #region concurrent
  // Ten requests activate the same new subscription at once, each with its own stale copy.
  const fresh = await CreateSubscription.call({ userId: 2 });
  const copies = await Promise.all(
    Array.from({ length: 10 }, () => dataSource.manager.findOneByOrFail(Subscription, { id: fresh!.aggregateId })),
  );
  const results = await Promise.all(copies.map((copy) => ActivateSubscription.call({ subscription: copy, stripeKey: 'sub_1' })));
  results.filter((result) => result !== null).length; // 1: the others reloaded, saw 'active', and were no-ops
  // #endregion concurrent

  return {
    eventType: event?.type,
    status: subscription.status,
    again,
    invalid: invalid?.message,
    conflict: conflict?.message,
    written: results.filter((result) => result !== null).length,
  };
}
