// #region imports
import { ValidationError } from 'typeorm-event-sourcing';
import { given } from 'typeorm-event-sourcing/testing';
import { ActivateSubscription } from '../subscriptions/commands';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

/** docs/testing.md: scenarios as a test suite writes them (each resolves, or throws with a diff). */
export async function activationScenarios() {
  // #region given-when-then
  const subscription = new Subscription(); // filled in by the event that creates it
  await given(SubscriptionCreated.build({ subscription, userId: 1 }))
    .when(ActivateSubscription, { subscription, stripeKey: 'sub_66123' })
    .then([SubscriptionActivated.build({ stripeKey: 'sub_66123' })]);
  // #endregion given-when-then

  // #region nothing-and-failures
  const active = new Subscription();
  await given(
    SubscriptionCreated.build({ subscription: active, userId: 1 }),
    SubscriptionActivated.build({ subscription: active, stripeKey: 'sub_1' }),
  )
    .when(ActivateSubscription, { subscription: active, stripeKey: 'sub_2' })
    .thenNothing(); // already active: a no-op

  const cancelled = new Subscription();
  await given(
    SubscriptionCreated.build({ subscription: cancelled, userId: 1 }),
    SubscriptionCancelled.build({ subscription: cancelled, reason: 'moving' }),
  )
    .when(ActivateSubscription, { subscription: cancelled, stripeKey: 'sub_3' })
    .thenFails(ValidationError, 'ActivateSubscription is invalid: a cancelled subscription cannot be activated');
  // #endregion nothing-and-failures
}

/** A scenario whose expectation is wrong, to show the diff it fails with. */
export async function wrongExpectation() {
  const subscription = new Subscription();
  // #region failing
  await given(SubscriptionCreated.build({ subscription, userId: 1 }))
    .when(ActivateSubscription, { subscription, stripeKey: 'sub_66123' })
    .then([SubscriptionActivated.build({ stripeKey: 'sub_99999' })]);
  // AssertionError: the command did not emit the expected events
  // + actual - expected
  //   [
  //     {
  //       data: {
  // +       stripeKey: 'sub_66123'
  // -       stripeKey: 'sub_99999'
  //       },
  //       type: 'Subscription.Activated'
  //     }
  //   ]
  // #endregion failing
}
