import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Attribute, Command, Data, Dispatcher, EventsOf, EventType } from 'typeorm-event-sourcing';

/**
 * The bench's own models: one varchar column changes on every write, so no write is ever a
 * no-op, and the plain entity has the same columns so the baseline writes the same row shape.
 */
@Aggregate()
@Entity()
export class BenchItem {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) label!: string;
  @AggregateVersion() version!: number;
}
@EventsOf(() => BenchItem)
export abstract class BenchItemEvent extends AggregateEvent<BenchItem, 'benchItem'> {}
@EventType('BenchItem.Opened', { creates: true })
export class BenchItemOpened extends BenchItemEvent {
  @Data() label!: string;
  apply(item: BenchItem) {
    item.label = this.label;
    return item;
  }
}
@EventType('BenchItem.Relabeled')
export class BenchItemRelabeled extends BenchItemEvent {
  @Data() label!: string;
  apply(item: BenchItem) {
    item.label = this.label;
    return item;
  }
}
/** The same change as BenchItemRelabeled, but an async reactor is registered for it (one outbox row per write). */
@EventType('BenchItem.RelabeledNotified')
export class BenchItemRelabeledNotified extends BenchItemEvent {
  @Data() label!: string;
  apply(item: BenchItem) {
    item.label = this.label;
    return item;
  }
}

/** Written only by the reactors case, whose probe reactor (below) is registered for it. */
@EventType('BenchItem.Pinged')
export class BenchItemPinged extends BenchItemEvent {
  @Data() label!: string;
  apply(item: BenchItem) {
    item.label = this.label;
    return item;
  }
}

/** The baseline: a plain TypeORM entity of the same shape, version kept by hand like the aggregate's. */
@Entity()
export class PlainItem {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) label!: string;
  @Column({ type: 'int', default: 0 }) version!: number;
}

export class RelabelItem extends Command<BenchItemRelabeled> {
  @Attribute() benchItem!: BenchItem;
  @Attribute() label!: string;
  buildEvent() {
    return BenchItemRelabeled.build({ benchItem: this.benchItem, label: this.label });
  }
}
export class RelabelItemNotified extends Command<BenchItemRelabeledNotified> {
  @Attribute() benchItem!: BenchItem;
  @Attribute() label!: string;
  buildEvent() {
    return BenchItemRelabeledNotified.build({ benchItem: this.benchItem, label: this.label });
  }
}

/** Same shape again, under directWrites: 'reject', to time the database trigger off and on. */
@Aggregate({ directWrites: 'reject' })
@Entity()
export class GuardedItem {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) label!: string;
  @AggregateVersion() version!: number;
}
@EventsOf(() => GuardedItem)
export abstract class GuardedItemEvent extends AggregateEvent<GuardedItem, 'guardedItem'> {}
@EventType('GuardedItem.Opened', { creates: true })
export class GuardedItemOpened extends GuardedItemEvent {
  @Data() label!: string;
  apply(item: GuardedItem) {
    item.label = this.label;
    return item;
  }
}
@EventType('GuardedItem.Relabeled')
export class GuardedItemRelabeled extends GuardedItemEvent {
  @Data() label!: string;
  apply(item: GuardedItem) {
    item.label = this.label;
    return item;
  }
}

/** The replay set: many small events folding into a running total, inserted with SQL. */
@Aggregate()
@Entity()
export class Ledger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) total!: number;
  @AggregateVersion() version!: number;
}
@EventsOf(() => Ledger)
export abstract class LedgerEvent extends AggregateEvent<Ledger, 'ledger'> {}
@EventType('Ledger.Opened', { creates: true })
export class LedgerOpened extends LedgerEvent {
  @Data() total!: number;
  apply(ledger: Ledger) {
    ledger.total = this.total;
    return ledger;
  }
}
@EventType('Ledger.Credited')
export class LedgerCredited extends LedgerEvent {
  @Data() amount!: number;
  apply(ledger: Ledger) {
    ledger.total += this.amount;
    return ledger;
  }
}

export const benchEntities = [
  BenchItem, BenchItemEvent, BenchItemOpened, BenchItemRelabeled, BenchItemRelabeledNotified, BenchItemPinged, PlainItem,
  GuardedItem, GuardedItemEvent, GuardedItemOpened, GuardedItemRelabeled,
  Ledger, LedgerEvent, LedgerOpened, LedgerCredited,
];

/** Set by the reactors case while it runs, to note when each call of the probe reactor starts. */
export const reactorProbe: { called?: (event: BenchItemPinged) => void } = {};

/**
 * Two async reactors that do nothing: for the update cases, what is measured is the outbox INSERT
 * in the write; for the reactors case, the way from commit to the reactor (the probe only reads
 * the clock, so the call's start is also its end).
 */
export const benchDispatcher = new Dispatcher()
  .on(BenchItemRelabeledNotified, { async: async () => undefined, name: 'bench-noop' })
  .on(BenchItemPinged, { async: async (event) => reactorProbe.called?.(event), name: 'bench-probe' });
