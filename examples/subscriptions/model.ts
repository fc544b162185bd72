// #region imports
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents, sourcedValues } from 'typeorm-event-sourcing';
// #endregion imports

// #region aggregate
// The aggregate: an ordinary TypeORM entity that has many events. Rows written before it had
// events become their first event, SubscriptionImported, through the baseline.
@Aggregate({ baseline: (row: Subscription) => SubscriptionImported.build({ subscription: row, ...sourcedValues(row) }) })
@Entity()
export class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'int', nullable: true }) rewardId!: number | null;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) activatedAt!: Date | null;
  @AggregateVersion() version!: number;
  @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
}
// #endregion aggregate

// #region events
// Its events, stored in subscription_events.
@EventsOf(() => Subscription)
export abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

@EventType('Subscription.Created', { creates: true })
export class SubscriptionCreated extends SubscriptionEvent {
  @Data() userId!: number;
  @Data({ optional: true, type: () => Number }) rewardId?: number | null;
  apply(subscription: Subscription): Subscription {
    subscription.userId = this.userId;
    subscription.rewardId = this.rewardId ?? null;
    return subscription;
  }
}

@EventType('Subscription.Activated')
export class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  apply(subscription: Subscription): Subscription {
    subscription.stripeKey = this.stripeKey;
    subscription.status = 'active';
    subscription.activatedAt = this.createdAt;
    return subscription;
  }
}

@EventType('Subscription.Cancelled')
export class SubscriptionCancelled extends SubscriptionEvent {
  @Data() reason!: string;
  apply(subscription: Subscription): Subscription {
    // Commands check this before building the event; apply is the last wall.
    if (subscription.status === 'cancelled') throw new Error('subscription is already cancelled');
    subscription.status = 'cancelled';
    return subscription;
  }
}

// #endregion events

// #region baseline-event
/** A row from the CRUD days, as it was when its events began: every sourced column. */
@EventType('Subscription.Imported', { creates: true })
export class SubscriptionImported extends SubscriptionEvent {
  @Data() userId!: number;
  @Data({ type: () => Number }) rewardId!: number | null;
  @Data() status!: string;
  @Data({ type: () => String }) stripeKey!: string | null;
  @Data({ type: () => Date }) activatedAt!: Date | null;
  apply(subscription: Subscription): Subscription {
    subscription.userId = this.userId;
    subscription.rewardId = this.rewardId;
    subscription.status = this.status;
    subscription.stripeKey = this.stripeKey;
    subscription.activatedAt = this.activatedAt;
    return subscription;
  }
}
// #endregion baseline-event

export const entities = [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionActivated, SubscriptionCancelled, SubscriptionImported];
