// #region imports
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType } from 'typeorm-event-sourcing';
// #endregion imports

// docs/event-evolution.md: the Subscription model of a later release, whose events changed since
// release 1 wrote its rows.

@Aggregate()
@Entity()
export class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'varchar', nullable: true }) plan!: string | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Subscription)
export abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

@EventType('Subscription.Created', { creates: true })
export class SubscriptionCreated extends SubscriptionEvent {
  @Data() userId!: number;
  apply(subscription: Subscription): Subscription {
    subscription.userId = this.userId;
    return subscription;
  }
}

// #region activated-v2
// Release 1 stored { stripeKey } under the name 'Subscription.Started'; release 2 renamed the
// type to 'Subscription.Activated'; release 3 added the plan, which was 'basic' for everyone
// before. Old rows stay as they are and read as version 2 of this class.
@EventType('Subscription.Activated', {
  version: 2,
  upcast: { 1: (data) => ({ ...data, plan: 'basic' }) },
  aliases: ['Subscription.Started'],
})
export class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  @Data() plan!: string;
  apply(subscription: Subscription): Subscription {
    subscription.status = 'active';
    subscription.stripeKey = this.stripeKey;
    subscription.plan = this.plan;
    return subscription;
  }
}
// #endregion activated-v2

// #region retired
// Pausing was dropped from the product: paused subscriptions in the history still replay, and
// SubscriptionPaused.build(...) now throws RetiredEventTypeError.
@EventType('Subscription.Paused', { retired: true })
export class SubscriptionPaused extends SubscriptionEvent {
  @Data() reason!: string;
  apply(subscription: Subscription): Subscription {
    subscription.status = 'paused';
    return subscription;
  }
}
// #endregion retired

export const entities = [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionActivated, SubscriptionPaused];
