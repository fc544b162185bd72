import 'reflect-metadata';
import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { IsNotEmpty } from 'class-validator';
// Relative, not the package name: the baseline-resume child process (tests/processes) compiles
// this file too, and must load the same src/ as its caller; jest maps the name to that file anyway.
import { Aggregate, AggregateEvent, AggregateVersion, Attribute, Command, Data, EventsOf, EventType, sourcedValues } from '../../src';

/** A CRUD table that stays CRUD; accounts point at it. */
@Entity('legacy_customer')
export class LegacyCustomer {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
}

/**
 * A CRUD model with years of rows, moved to events: NOT NULL columns without defaults, NULLs,
 * a numeric, a bigint, a date, a json column, and a foreign key declared as its own column.
 */
@Aggregate({ baseline: (row: LegacyAccount) => LegacyAccountImported.build({ legacyAccount: row, ...sourcedValues(row) }) })
@Entity('legacy_account')
export class LegacyAccount {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'varchar', nullable: true }) nickname!: string | null;
  @Column({ type: 'numeric', precision: 12, scale: 2 }) balance!: string;
  @Column({ type: 'bigint', nullable: true }) externalRef!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) closedAt!: Date | null;
  @Column({ type: 'jsonb', default: {} }) settings!: Record<string, unknown>;
  @Column({ type: 'int', nullable: true }) customerId!: number | null;
  @ManyToOne(() => LegacyCustomer) @JoinColumn({ name: 'customerId' }) customer?: LegacyCustomer;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => LegacyAccount)
export abstract class LegacyAccountEvent extends AggregateEvent<LegacyAccount, 'legacyAccount'> {}

/** The baseline: the row as it was when the model was sourced. */
@EventType('LegacyAccount.Imported', { creates: true })
export class LegacyAccountImported extends LegacyAccountEvent {
  @Data() name!: string;
  @Data({ type: () => String }) nickname!: string | null;
  @Data() balance!: string;
  @Data({ type: () => String }) externalRef!: string | null;
  @Data({ type: () => Date }) closedAt!: Date | null;
  @Data({ type: () => Object }) settings!: Record<string, unknown>;
  @Data({ type: () => Number }) customerId!: number | null;
  apply(account: LegacyAccount): LegacyAccount {
    account.name = this.name;
    account.nickname = this.nickname;
    account.balance = this.balance;
    account.externalRef = this.externalRef;
    account.closedAt = this.closedAt;
    account.settings = this.settings;
    account.customerId = this.customerId;
    return account;
  }
}

@EventType('LegacyAccount.Renamed')
export class LegacyAccountRenamed extends LegacyAccountEvent {
  @Data() name!: string;
  apply(account: LegacyAccount): LegacyAccount {
    account.name = this.name;
    return account;
  }
}

export class RenameLegacyAccount extends Command<LegacyAccountRenamed> {
  @Attribute() legacyAccount!: LegacyAccount;
  @Attribute() @IsNotEmpty() name!: string;
  noop() {
    return this.legacyAccount.name === this.name;
  }
  buildEvent() {
    return LegacyAccountRenamed.build({ legacyAccount: this.legacyAccount, name: this.name });
  }
}

/** A sourced model that declares no baseline. */
@Aggregate()
@Entity('legacy_note')
export class LegacyNote {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) body!: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => LegacyNote)
export abstract class LegacyNoteEvent extends AggregateEvent<LegacyNote, 'legacyNote'> {}

@EventType('LegacyNote.Written', { creates: true })
export class LegacyNoteWritten extends LegacyNoteEvent {
  @Data() body!: string;
  apply(note: LegacyNote): LegacyNote {
    note.body = this.body;
    return note;
  }
}

@EventType('LegacyNote.Edited')
export class LegacyNoteEdited extends LegacyNoteEvent {
  @Data() body!: string;
  apply(note: LegacyNote): LegacyNote {
    note.body = this.body;
    return note;
  }
}

export const legacyEntities = [
  LegacyCustomer,
  LegacyAccount,
  LegacyAccountEvent,
  LegacyAccountImported,
  LegacyAccountRenamed,
  LegacyNote,
  LegacyNoteEvent,
  LegacyNoteWritten,
  LegacyNoteEdited,
];
