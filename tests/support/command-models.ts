import 'reflect-metadata';
import { ArrayNotEmpty, IsDate, IsInt, IsNotEmpty, IsOptional, IsPositive, IsString, MaxLength } from 'class-validator';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Attribute, Command, Data, EventsOf, EventType } from 'typeorm-event-sourcing';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from './subscription-model';

/**
 * Commands on the Subscription model of ./subscription-model.ts, plus a second aggregate
 * (CommandWallet, names no other model uses) for commands that write to two aggregates.
 */

// A second aggregate type.

@Aggregate()
@Entity()
export class CommandWallet {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', nullable: true }) owner!: string | null;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => CommandWallet)
export abstract class CommandWalletEvent extends AggregateEvent<CommandWallet, 'commandWallet'> {}

@EventType('CommandWallet.Opened', { creates: true })
export class CommandWalletOpened extends CommandWalletEvent {
  @Data() owner!: string;
  apply(wallet: CommandWallet): void {
    wallet.owner = this.owner;
  }
}

@EventType('CommandWallet.Credited')
export class CommandWalletCredited extends CommandWalletEvent {
  @Data() amount!: number;
  apply(wallet: CommandWallet): void {
    // The last wall: commands are expected to check this before building the event.
    if (this.amount <= 0) throw new Error(`cannot credit ${this.amount}`);
    wallet.balance += this.amount;
  }
}

export const commandEntities = [...subscriptionEntities, CommandWallet, CommandWalletEvent, CommandWalletOpened, CommandWalletCredited];

// Commands.

/** Creates a subscription: no aggregate attribute, its event creates the aggregate. */
export class CreateSubscription extends Command<SubscriptionCreated> {
  @Attribute() @IsInt() @IsPositive() userId!: number;
  buildEvent() {
    return SubscriptionCreated.build({ userId: this.userId });
  }
}

/** design.md's ActivateSubscription, with a state check in validate(). */
export class ActivateSubscription extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() @MaxLength(20) stripeKey!: string;
  @Attribute() @IsOptional() @IsDate() trialEndsAt?: Date;
  @Attribute() metadata?: Record<string, unknown>;

  validate() {
    if (this.subscription.status === 'cancelled') this.addError('subscription', 'a cancelled subscription cannot be activated', 'notCancelled');
  }

  noop() {
    return this.subscription.status === 'active';
  }

  buildEvent() {
    return SubscriptionActivated.build({
      subscription: this.subscription,
      stripeKey: this.stripeKey,
      trialEndsAt: this.trialEndsAt ?? null,
      metadata: this.metadata,
    });
  }
}

/** ActivateSubscription with an asynchronous validate and noop. */
export class ActivateSubscriptionLater extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() stripeKey!: string;

  async validate() {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.subscription.status === 'cancelled') this.addError('subscription', 'a cancelled subscription cannot be activated');
    if (this.stripeKey.startsWith('test_')) this.addError('stripeKey', 'test keys are not accepted', 'liveKey');
  }

  async noop() {
    await new Promise((resolve) => setImmediate(resolve));
    return this.subscription.status === 'active';
  }

  async buildEvent() {
    await new Promise((resolve) => setImmediate(resolve));
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey });
  }
}

/** Several events on one aggregate: one NoteAdded per note, saved in order. */
export class AddNotes extends Command<SubscriptionNoteAdded[]> {
  @Attribute() subscription!: Subscription;
  @Attribute() @ArrayNotEmpty() @IsString({ each: true }) notes!: string[];
  buildEvent() {
    return this.notes.map((note) => SubscriptionNoteAdded.build({ subscription: this.subscription, note }));
  }
}

/** No noop and no state check: a second cancellation reaches apply, which throws. */
export class CancelSubscription extends Command<SubscriptionCancelled> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() reason!: string;
  buildEvent() {
    return SubscriptionCancelled.build({ subscription: this.subscription, reason: this.reason });
  }
}

/**
 * Two aggregates, two events: activates the subscription and credits the wallet. The amount has
 * no rule on purpose, so a non-positive amount reaches `CommandWalletCredited.apply`, which throws.
 */
export class ActivateWithBonus extends Command<[SubscriptionActivated, CommandWalletCredited]> {
  @Attribute() subscription!: Subscription;
  @Attribute() wallet!: CommandWallet;
  @Attribute() @IsNotEmpty() stripeKey!: string;
  @Attribute() amount!: number;
  buildEvent(): [SubscriptionActivated, CommandWalletCredited] {
    return [
      SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey }),
      CommandWalletCredited.build({ commandWallet: this.wallet, amount: this.amount }),
    ];
  }
}

/** An aggregate attribute that may be left out. */
export class OpenWallet extends Command<CommandWalletOpened> {
  @Attribute({ optional: true }) wallet?: CommandWallet;
  @Attribute() @IsNotEmpty() owner!: string;
  buildEvent() {
    return CommandWalletOpened.build({ commandWallet: this.wallet, owner: this.owner });
  }
}
