import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from 'typeorm-event-sourcing';

/**
 * A second aggregate for the replay and schema tests: its own events table
 * ("replay_ledger_events") drawing `position` from the same sequence as "subscription_events".
 * Its column defaults are written the way TypeORM reads them back (a plain literal, a JSON
 * literal), so a DataSource of these entities alone must show an empty schema diff.
 */
@Aggregate()
@Entity({ name: 'replay_ledger' })
export class ReplayLedger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', nullable: true }) owner!: string | null;
  @Column({ type: 'varchar', default: 'open' }) state!: string;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @Column({ type: 'jsonb', default: [] }) memos!: string[];
  @AggregateVersion() version!: number;
  @HasEvents(() => ReplayLedgerEvent) events!: ReplayLedgerEvent[];
}

@EventsOf(() => ReplayLedger)
export abstract class ReplayLedgerEvent extends AggregateEvent<ReplayLedger, 'replayLedger'> {}

@EventType('ReplayLedger.Opened', { creates: true })
export class ReplayLedgerOpened extends ReplayLedgerEvent {
  @Data() owner!: string;
  apply(ledger: ReplayLedger): ReplayLedger {
    ledger.owner = this.owner;
    return ledger;
  }
}

@EventType('ReplayLedger.Credited')
export class ReplayLedgerCredited extends ReplayLedgerEvent {
  @Data() amount!: number;
  @Data() memo!: string;
  apply(ledger: ReplayLedger): ReplayLedger {
    ledger.balance += this.amount;
    ledger.memos = [...ledger.memos, this.memo];
    return ledger;
  }
}

@EventType('ReplayLedger.Closed')
export class ReplayLedgerClosed extends ReplayLedgerEvent {
  apply(ledger: ReplayLedger): ReplayLedger {
    ledger.state = 'closed';
    return ledger;
  }
}

export const replayLedgerEntities = [ReplayLedger, ReplayLedgerEvent, ReplayLedgerOpened, ReplayLedgerCredited, ReplayLedgerClosed];
