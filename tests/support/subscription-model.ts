import 'reflect-metadata';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents, sourcedValues } from 'typeorm-event-sourcing';

/** The talk's Subscription, as design.md writes it, plus a few columns the tests need. */
@Aggregate({ exclude: ['viewCount'], baseline: (row: Subscription) => SubscriptionImported.build({ subscription: row, ...sourcedValues(row) }) })
@Entity()
export class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', nullable: true }) userId!: number | null;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) activatedAt!: Date | null;
  @Column({ type: 'jsonb', default: () => `'[]'` }) notes!: string[];
  @Column({ type: 'int', default: 0 }) viewCount!: number;
  @CreateDateColumn({ type: 'timestamptz' }) insertedAt!: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
  @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
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

@EventType('Subscription.Activated')
export class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  @Data({ optional: true, type: () => Date }) trialEndsAt?: Date | null;
  apply(subscription: Subscription): Subscription {
    subscription.stripeKey = this.stripeKey;
    subscription.status = 'active';
    subscription.activatedAt = this.createdAt;
    return subscription;
  }
}

@EventType('Subscription.NoteAdded')
export class SubscriptionNoteAdded extends SubscriptionEvent {
  @Data() note!: string;
  @Data({ optional: true }) details?: { tags: string[]; at: string; nested: { level: number; ok: boolean } };
  apply(subscription: Subscription): void {
    subscription.notes = [...subscription.notes, this.note];
  }
}

@EventType('Subscription.Cancelled')
export class SubscriptionCancelled extends SubscriptionEvent {
  @Data() reason!: string;
  apply(subscription: Subscription): Subscription {
    if (subscription.status === 'cancelled') throw new Error('already cancelled');
    subscription.status = 'cancelled';
    return subscription;
  }
}

/** An event whose stripe key is too long for nothing: apply succeeds, the INSERT fails (see tests). */
@EventType('Subscription.Renamed')
export class SubscriptionRenamed extends SubscriptionEvent {
  @Data() stripeKey!: string;
  apply(subscription: Subscription): Subscription {
    subscription.stripeKey = this.stripeKey;
    return subscription;
  }
}

/** The baseline of a row from before events. */
@EventType('Subscription.Imported', { creates: true })
export class SubscriptionImported extends SubscriptionEvent {
  @Data({ type: () => Number }) userId!: number | null;
  @Data() status!: string;
  @Data({ type: () => String }) stripeKey!: string | null;
  @Data({ type: () => Date }) activatedAt!: Date | null;
  @Data({ type: () => Array }) notes!: string[];
  apply(subscription: Subscription): Subscription {
    Object.assign(subscription, { userId: this.userId, status: this.status, stripeKey: this.stripeKey, activatedAt: this.activatedAt, notes: this.notes });
    return subscription;
  }
}

export const subscriptionEntities = [
  Subscription,
  SubscriptionEvent,
  SubscriptionCreated,
  SubscriptionImported,
  SubscriptionActivated,
  SubscriptionNoteAdded,
  SubscriptionCancelled,
  SubscriptionRenamed,
];
