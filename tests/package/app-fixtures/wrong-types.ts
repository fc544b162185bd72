// Must NOT compile: the pack test asserts tsc reports exactly these mistakes, one per line.
import { expect } from '@jest/globals';
import { eventMatchers } from 'typeorm-event-sourcing/testing';
import { Account, Subscription, SubscriptionActivated } from './model';

expect.extend(eventMatchers);

declare const subscription: Subscription;
declare const account: Account;

SubscriptionActivated.build({ subscriptoin: subscription, stripeKey: 'sub_1' }); // a typo'd aggregate key
SubscriptionActivated.build({ subscription }); // the required @Data stripeKey left out
SubscriptionActivated.build({ subscription: account, stripeKey: 'sub_1' }); // an aggregate of the wrong type
SubscriptionActivated.build({ aggregate: subscription, stripeKey: 'sub_1' }); // the default key, where the events class names its own
expect(null).toHaveEmitted(SubscriptionActivated, { stripeKy: 'sub_1' }); // a typo'd attribute in the matcher
