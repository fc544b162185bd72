// #region imports
import { Dispatcher } from 'typeorm-event-sourcing';
import { SubscriptionActivated, SubscriptionCancelled } from './model';
import { NewSubscriberNotification, RecountRewardSubscribers, SubscriptionConfirmation } from './reactors';
// #endregion imports

// #region dispatcher
export const dispatcher = new Dispatcher()
  .on(SubscriptionActivated, { async: SubscriptionConfirmation })
  .on(SubscriptionActivated, { async: NewSubscriberNotification, attempts: 5, backoff: 2000 })
  .on([SubscriptionActivated, SubscriptionCancelled], { trigger: RecountRewardSubscribers });
// #endregion dispatcher
