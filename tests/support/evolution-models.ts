import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType } from 'typeorm-event-sourcing';

/** An aggregate whose events changed shape over time: the event evolution tests' domain. */
@Aggregate()
@Entity()
export class Membership {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', nullable: true }) userId!: number | null;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'varchar', nullable: true }) plan!: string | null;
  @Column({ type: 'int', default: 0 }) seats!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Membership)
export abstract class MembershipEvent extends AggregateEvent<Membership, 'membership'> {}

@EventType('Membership.Opened', { creates: true })
export class MembershipOpened extends MembershipEvent {
  @Data() userId!: number;
  apply(membership: Membership): Membership {
    membership.userId = this.userId;
    return membership;
  }
}

/**
 * Version 1 stored `{ stripeKey }`; version 2 added `plan` (old memberships were all 'basic');
 * version 3 added `seats`. Before its rename the type was stored as 'Membership.Enabled'.
 */
@EventType('Membership.Activated', {
  version: 3,
  upcast: {
    1: (data) => ({ ...data, plan: 'basic' }),
    2: (data) => ({ ...data, seats: 1 }),
  },
  aliases: ['Membership.Enabled'],
})
export class MembershipActivated extends MembershipEvent {
  @Data() stripeKey!: string;
  @Data() plan!: string;
  @Data() seats!: number;
  apply(membership: Membership): Membership {
    membership.status = 'active';
    membership.stripeKey = this.stripeKey;
    membership.plan = this.plan;
    membership.seats = this.seats;
    return membership;
  }
}

/** Pausing was dropped from the product: old pauses replay, new ones are refused. */
@EventType('Membership.Paused', { retired: true })
export class MembershipPaused extends MembershipEvent {
  @Data() reason!: string;
  apply(membership: Membership): Membership {
    membership.status = 'paused';
    return membership;
  }
}

/** An upcaster that fails on data it does not expect. */
@EventType('Membership.Resized', {
  version: 2,
  upcast: {
    1: (data) => {
      if (typeof data.count !== 'number') throw new Error('count is missing');
      return { seats: data.count };
    },
  },
})
export class MembershipResized extends MembershipEvent {
  @Data() seats!: number;
  apply(membership: Membership): Membership {
    membership.seats = this.seats;
    return membership;
  }
}

export const membershipEntities = [Membership, MembershipEvent, MembershipOpened, MembershipActivated, MembershipPaused, MembershipResized];
