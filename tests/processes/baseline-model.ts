import 'reflect-metadata';
import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, sourcedValues } from '../../src';

/**
 * The CRUD model of the baseline resume test (its child and its parent): the kinds of columns a
 * table of the CRUD days holds (NULLs, numeric, bigint, timestamptz, jsonb, a foreign key declared
 * as its own column), with a declared baseline. Imported relatively from src/ so the compiled
 * child runs the current source.
 */
@Entity('resumed_customer')
export class ResumedCustomer {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
}

@Aggregate({ baseline: (row: ResumedAccount) => ResumedAccountImported.build({ resumedAccount: row, ...sourcedValues(row) }) })
@Entity('resumed_account')
export class ResumedAccount {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'varchar', nullable: true }) nickname!: string | null;
  @Column({ type: 'numeric', precision: 12, scale: 2 }) balance!: string;
  @Column({ type: 'bigint', nullable: true }) externalRef!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) closedAt!: Date | null;
  @Column({ type: 'jsonb', default: {} }) settings!: Record<string, unknown>;
  @Column({ type: 'int', nullable: true }) customerId!: number | null;
  @ManyToOne(() => ResumedCustomer) @JoinColumn({ name: 'customerId' }) customer?: ResumedCustomer;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => ResumedAccount)
export abstract class ResumedAccountEvent extends AggregateEvent<ResumedAccount, 'resumedAccount'> {}

/** The baseline: the row as it was when the model was sourced. */
@EventType('ResumedAccount.Imported', { creates: true })
export class ResumedAccountImported extends ResumedAccountEvent {
  @Data() name!: string;
  @Data({ type: () => String }) nickname!: string | null;
  @Data() balance!: string;
  @Data({ type: () => String }) externalRef!: string | null;
  @Data({ type: () => Date }) closedAt!: Date | null;
  @Data({ type: () => Object }) settings!: Record<string, unknown>;
  @Data({ type: () => Number }) customerId!: number | null;
  apply(account: ResumedAccount): ResumedAccount {
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

export const baselineEntities = [ResumedCustomer, ResumedAccount, ResumedAccountEvent, ResumedAccountImported];
