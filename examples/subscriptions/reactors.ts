// #region imports
import type { Reactor, ReactorContext } from 'typeorm-event-sourcing';
import { Subscription, type SubscriptionActivated, type SubscriptionEvent } from './model';
import { Reward, RewardSubscribersRecounted } from './reward';
import { SentMail } from './sent-mail';
import { User } from './user';
// #endregion imports

// #region idempotent-reactor
/** Async: mails the backer. Jobs are delivered at least once, so sending is keyed by event. */
export class SubscriptionConfirmation implements Reactor<SubscriptionActivated> {
  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    const { user } = await subscriberOf(event, ctx);
    await sendMail(ctx, event, user.email, 'Your subscription is active');
  }
}

/** Stands in for a mail provider call; a second delivery of the same job finds the row and sends nothing. */
async function sendMail(ctx: ReactorContext, event: SubscriptionEvent, recipient: string, subject: string): Promise<void> {
  await ctx.manager
    .createQueryBuilder()
    .insert()
    .into(SentMail)
    .values({ reactor: ctx.reactor, eventId: event.id, recipient, subject })
    .orIgnore() // unique (reactor, eventId)
    .execute();
}

/** The subscription an event belongs to, and its backer. */
async function subscriberOf(event: SubscriptionEvent, ctx: ReactorContext): Promise<{ subscription: Subscription; user: User }> {
  const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
  return { subscription, user: await ctx.manager.findOneByOrFail(User, { id: subscription.userId }) };
}
// #endregion idempotent-reactor

/** Async: tells the creator about a new backer. */
export class NewSubscriberNotification implements Reactor<SubscriptionActivated> {
  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    const { user } = await subscriberOf(event, ctx);
    await sendMail(ctx, event, 'creator@example.com', `New backer: ${user.name}`);
  }
}

// #region trigger-reactor
/** Trigger: keeps the reward's subscriber count, in the same transaction as the event. */
export class RecountRewardSubscribers implements Reactor<SubscriptionEvent> {
  async call(event: SubscriptionEvent, ctx: ReactorContext): Promise<void> {
    const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
    if (subscription.rewardId === null) return;
    const reward = await ctx.manager.findOneByOrFail(Reward, { id: subscription.rewardId });
    const count = await ctx.manager.countBy(Subscription, { rewardId: reward.id, status: 'active' });
    if (count !== reward.subscriberCount) {
      await ctx.manager.save(RewardSubscribersRecounted.build({ reward, count }));
    }
  }
}
// #endregion trigger-reactor
