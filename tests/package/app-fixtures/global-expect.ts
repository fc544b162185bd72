// Type-checked only (tsconfig types: node, jest): the matcher on jest's global expect.
import { SubscriptionActivated } from './model';

export function expectActivated(result: unknown): void {
  expect(result).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_1' });
}
