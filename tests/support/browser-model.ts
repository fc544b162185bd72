import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, Dispatcher, EventsOf, EventType, type ReactorContext } from 'typeorm-event-sourcing';

/**
 * The event browser's test domain: accounts whose deposits are posted to a ledger by an async
 * reactor (a correlation across two aggregates) and audited by another async reactor that
 * refuses the amount 13 (a failed job with a reason); a freeze is posted by a trigger reactor.
 */
@Aggregate()
@Entity()
export class Account {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) owner!: string;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @Column({ type: 'varchar', default: 'open' }) status!: string;
  @Column({ type: 'text', nullable: true }) memo!: string | null;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Account)
export abstract class AccountEvent extends AggregateEvent<Account, 'account'> {}

@EventType('Account.Opened', { creates: true })
export class AccountOpened extends AccountEvent {
  @Data() owner!: string;
  apply(account: Account): Account {
    account.owner = this.owner;
    return account;
  }
}

@EventType('Account.Deposited')
export class AccountDeposited extends AccountEvent {
  @Data() amount!: number;
  apply(account: Account): Account {
    account.balance += this.amount;
    return account;
  }
}

@EventType('Account.MemoWritten')
export class AccountMemoWritten extends AccountEvent {
  @Data() memo!: string;
  apply(account: Account): Account {
    account.memo = this.memo;
    return account;
  }
}

@EventType('Account.Frozen')
export class AccountFrozen extends AccountEvent {
  @Data() reason!: string;
  apply(account: Account): Account {
    account.status = 'frozen';
    return account;
  }
}

@Aggregate()
@Entity()
export class Ledger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) entries!: number;
  @Column({ type: 'int', default: 0 }) total!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Ledger)
export abstract class LedgerEvent extends AggregateEvent<Ledger, 'ledger'> {}

@EventType('Ledger.Opened', { creates: true })
export class LedgerOpened extends LedgerEvent {
  apply(ledger: Ledger): Ledger {
    return ledger;
  }
}

@EventType('Ledger.EntryPosted')
export class LedgerEntryPosted extends LedgerEvent {
  @Data() account!: number;
  @Data() amount!: number;
  apply(ledger: Ledger): Ledger {
    ledger.entries += 1;
    ledger.total += this.amount;
    return ledger;
  }
}

/** Async: posts each deposit to ledger 1, so the ledger's event carries the deposit's causation. */
export class PostToLedger {
  async call(event: AccountDeposited, ctx: ReactorContext): Promise<void> {
    const ledger = await ctx.manager.findOneByOrFail(Ledger, { id: 1 });
    await ctx.manager.save(LedgerEntryPosted.build({ ledger, account: event.aggregateId, amount: event.amount }));
  }
}

/** Async: refuses the amount 13, every time, so its job fails for good with a reason. */
export class AuditDeposit {
  async call(event: AccountDeposited): Promise<void> {
    if (event.amount === 13) throw new Error(`audit refused the amount ${event.amount} <unlucky> & "cursed"`);
  }
}

/** Trigger: a freeze is posted to the ledger as an entry of 0, in the freeze's own transaction. */
export class PostFreeze {
  async call(event: AccountFrozen, ctx: ReactorContext): Promise<void> {
    const ledger = await ctx.manager.findOneByOrFail(Ledger, { id: 1 });
    await ctx.manager.save(LedgerEntryPosted.build({ ledger, account: event.aggregateId, amount: 0 }));
  }
}

export const browserDispatcher = new Dispatcher()
  .on(AccountDeposited, { async: PostToLedger })
  .on(AccountDeposited, { async: AuditDeposit, attempts: 2, backoff: 10 })
  .on(AccountFrozen, { trigger: PostFreeze });

export const browserEntities = [Account, AccountEvent, AccountOpened, AccountDeposited, AccountMemoWritten, AccountFrozen, Ledger, LedgerEvent, LedgerOpened, LedgerEntryPosted];
