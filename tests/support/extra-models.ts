import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, EventsOf, EventType } from 'typeorm-event-sourcing';

/**
 * Misconfigured models: event classes claiming a stored type name another class already claims.
 * All decorated classes live in one process-wide registry, so these aggregates have names no
 * other model uses; list these entities only in DataSources of their own.
 */

// Two aggregates, each with its own events table, whose events claim the same type name:
// TypeORM accepts this (the tables differ); EventSourcing.attach must refuse it.

@Aggregate()
@Entity()
export class DuplicateTypeLedger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => DuplicateTypeLedger)
export abstract class DuplicateTypeLedgerEvent extends AggregateEvent<DuplicateTypeLedger, 'duplicateTypeLedger'> {}

@EventType('DuplicateType.Opened', { creates: true })
export class DuplicateTypeLedgerOpened extends DuplicateTypeLedgerEvent {
  apply(ledger: DuplicateTypeLedger): void {
    ledger.balance = 0;
  }
}

@Aggregate()
@Entity()
export class DuplicateTypeAccount {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'new' }) state!: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => DuplicateTypeAccount)
export abstract class DuplicateTypeAccountEvent extends AggregateEvent<DuplicateTypeAccount, 'duplicateTypeAccount'> {}

@EventType('DuplicateType.Opened', { creates: true })
export class DuplicateTypeAccountOpened extends DuplicateTypeAccountEvent {
  apply(account: DuplicateTypeAccount): void {
    account.state = 'open';
  }
}

export const duplicateTypeEntities = [
  DuplicateTypeLedger,
  DuplicateTypeLedgerEvent,
  DuplicateTypeLedgerOpened,
  DuplicateTypeAccount,
  DuplicateTypeAccountEvent,
  DuplicateTypeAccountOpened,
];

// Two classes of one events table claiming one type name: TypeORM itself refuses the
// discriminator clash when the DataSource initializes, before EventSourcing.attach runs.

@Aggregate()
@Entity()
export class SameTableDuplicate {
  @PrimaryGeneratedColumn() id!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => SameTableDuplicate)
export abstract class SameTableDuplicateEvent extends AggregateEvent<SameTableDuplicate, 'sameTableDuplicate'> {}

@EventType('SameTableDuplicate.Happened')
export class SameTableDuplicateHappened extends SameTableDuplicateEvent {
  apply(): void {}
}

@EventType('SameTableDuplicate.Happened')
export class SameTableDuplicateHappenedAgain extends SameTableDuplicateEvent {
  apply(): void {}
}

export const sameTableDuplicateEntities = [
  SameTableDuplicate,
  SameTableDuplicateEvent,
  SameTableDuplicateHappened,
  SameTableDuplicateHappenedAgain,
];
