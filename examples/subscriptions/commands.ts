// #region imports
import { IsInt, IsNotEmpty, IsOptional, IsPositive, MaxLength } from 'class-validator';
import { Attribute, Command } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from './model';
// #endregion imports

// #region create
/** Creates a subscription (its first event creates the aggregate). */
export class CreateSubscription extends Command<SubscriptionCreated> {
  @Attribute() @IsInt() @IsPositive() userId!: number;
  @Attribute() @IsOptional() @IsInt() rewardId?: number;
  buildEvent() {
    return SubscriptionCreated.build({ userId: this.userId, rewardId: this.rewardId ?? null });
  }
}
// #endregion create

// #region activate
export class ActivateSubscription extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() stripeKey!: string;
  @Attribute() metadata?: Record<string, unknown>;

  validate() {
    if (this.subscription.status === 'cancelled') this.addError('subscription', 'a cancelled subscription cannot be activated');
  }

  noop() {
    return this.subscription.status === 'active';
  }

  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey, metadata: this.metadata });
  }
}
// #endregion activate

// #region cancel
export class CancelSubscription extends Command<SubscriptionCancelled> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() @MaxLength(200) reason!: string;
  noop() {
    return this.subscription.status === 'cancelled';
  }
  buildEvent() {
    return SubscriptionCancelled.build({ subscription: this.subscription, reason: this.reason });
  }
}
// #endregion cancel
