// The NestJS tests' model: imported from src/ (not the package name), so that the compiled
// programs and the library share one copy of every class.
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from '../../src';

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
