// The model of the jest and type fixtures, installed into the pack test's separate app.
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from 'typeorm-event-sourcing';

@Aggregate()
@Entity()
export class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @AggregateVersion() version!: number;
  @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
}

@EventsOf(() => Subscription)
export abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

@EventType('Subscription.Created', { creates: true })
export class SubscriptionCreated extends SubscriptionEvent {
  @Data({ optional: true }) note?: string;
  apply(subscription: Subscription): Subscription {
    return subscription;
  }
}

@EventType('Subscription.Activated')
export class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  apply(subscription: Subscription): Subscription {
    subscription.status = 'active';
    subscription.stripeKey = this.stripeKey;
    return subscription;
  }
}

/** Another aggregate, to pass where a Subscription belongs. */
@Aggregate()
@Entity()
export class Account {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'open' }) state!: string;
  @AggregateVersion() version!: number;
}

export const entities = [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionActivated];
