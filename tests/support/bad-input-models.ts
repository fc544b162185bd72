import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Attribute, Command, Data, EventsOf, EventType } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded } from './subscription-model';

/**
 * Models of tests/integration/bad-input.test.ts and weird-strings.test.ts. Names no other model
 * uses: decorated classes share one registry per test file.
 */

// A ledger only DataSources of their own list: "attached" is tracked per event class, so an event
// saved before attach is only refused when no other DataSource of the file attached its classes.

@Aggregate()
@Entity()
export class BadInputLedger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', nullable: true }) owner!: string | null;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => BadInputLedger)
export abstract class BadInputLedgerEvent extends AggregateEvent<BadInputLedger, 'badInputLedger'> {}

@EventType('BadInputLedger.Opened', { creates: true })
export class BadInputLedgerOpened extends BadInputLedgerEvent {
  @Data() owner!: string;
  apply(ledger: BadInputLedger): void {
    ledger.owner = this.owner;
  }
}

/** Two required attributes, so a build missing both names both. */
@EventType('BadInputLedger.Credited')
export class BadInputLedgerCredited extends BadInputLedgerEvent {
  @Data() amount!: number;
  @Data() memo!: string;
  apply(ledger: BadInputLedger): void {
    ledger.balance += this.amount;
  }
}

export const badInputLedgerEntities = [BadInputLedger, BadInputLedgerEvent, BadInputLedgerOpened, BadInputLedgerCredited];

/** A command with nothing to write: buildEvent returns an empty array. */
export class NoteNothing extends Command<SubscriptionNoteAdded[]> {
  @Attribute() subscription!: Subscription;
  buildEvent(): SubscriptionNoteAdded[] {
    return [];
  }
}

/** A command without an aggregate attribute and nothing to write. */
export class CreateNothing extends Command<SubscriptionCreated[]> {
  @Attribute() userId!: number;
  buildEvent(): SubscriptionCreated[] {
    return [];
  }
}

// Strings of every kind, stored in data, metadata and aggregate columns of three types.

@Aggregate()
@Entity()
export class WeirdStringBox {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', nullable: true }) label!: string | null;
  @Column({ type: 'text', nullable: true }) body!: string | null;
  @Column({ type: 'jsonb', nullable: true }) contents!: Record<string, unknown> | null;
  @Column({ type: 'jsonb', default: () => `'[]'` }) labels!: string[];
  @AggregateVersion() version!: number;
}

@EventsOf(() => WeirdStringBox)
export abstract class WeirdStringBoxEvent extends AggregateEvent<WeirdStringBox, 'weirdStringBox'> {}

@EventType('WeirdStringBox.Packed', { creates: true })
export class WeirdStringBoxPacked extends WeirdStringBoxEvent {
  @Data() label!: string;
  @Data() body!: string;
  @Data({ optional: true }) contents?: Record<string, unknown>;
  apply(box: WeirdStringBox): void {
    box.label = this.label;
    box.body = this.body;
    box.contents = this.contents ?? null;
    box.labels = [this.label];
  }
}

@EventType('WeirdStringBox.Relabelled')
export class WeirdStringBoxRelabelled extends WeirdStringBoxEvent {
  @Data() label!: string;
  apply(box: WeirdStringBox): void {
    box.label = this.label;
    box.labels = [...box.labels, this.label];
  }
}

export const weirdStringEntities = [WeirdStringBox, WeirdStringBoxEvent, WeirdStringBoxPacked, WeirdStringBoxRelabelled];
