// The fast write path as a user meets it through the installed package: one statement per
// es.append, stale and edited instances, 16 writers on one row, a column `apply` reads that events
// do not decide, hostile strings, a migration between two writes. The pack test compiles and runs
// it against real PostgreSQL and compares what it prints.
import 'reflect-metadata';
import { Column, DataSource, Entity, PrimaryGeneratedColumn, UpdateDateColumn, type Logger } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, ConcurrencyError, Data, EventSourcing, EventsOf, EventType } from 'typeorm-event-sourcing';

@Aggregate({ exclude: ['note'] })
@Entity()
class Account {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) owner!: string;
  @Column({ type: 'numeric', precision: 12, scale: 2, default: 0 }) balance!: string;
  @Column({ type: 'jsonb', nullable: true }) tags!: Record<string, string> | null;
  @Column({ type: 'varchar', nullable: true }) note!: string | null;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Account)
abstract class AccountEvent extends AggregateEvent<Account, 'account'> {}

@EventType('Account.Opened', { creates: true })
class AccountOpened extends AccountEvent {
  @Data() owner!: string;
  apply(account: Account) {
    account.owner = this.owner;
    return account;
  }
}

@EventType('Account.Credited')
class AccountCredited extends AccountEvent {
  @Data() amount!: number;
  @Data() tag!: string;
  apply(account: Account) {
    account.balance = (Number(account.balance) + this.amount).toFixed(2);
    account.tags = { ...account.tags, [this.tag]: this.tag };
    return account;
  }
}

/** Reads `note`, which events do not decide: must see the row's value, not a remembered one. */
@EventType('Account.Noted')
class AccountNoted extends AccountEvent {
  apply(account: Account) {
    account.owner = `${account.owner} (${account.note ?? 'no note'})`;
    return account;
  }
}

const statements: string[] = [];
const errorCodes: string[] = [];
const logger: Logger = {
  logQuery: (query) => void statements.push(query),
  logQueryError: (error) => void errorCodes.push(String((error as { code?: string }).code ?? error)),
  logQuerySlow: () => undefined,
  logSchemaBuild: () => undefined,
  logMigration: () => undefined,
  log: () => undefined,
};

/** Statements sent while `fn` ran, as their first words. */
async function sent(fn: () => Promise<unknown>): Promise<string[]> {
  statements.length = 0;
  await fn();
  // The wake-up of projection runners, sent 50 ms after commits, belongs to no write.
  return statements.filter((query) => !query.startsWith('SELECT pg_notify(')).map((query) => query.trim().split(/\s+/).slice(0, 2).join(' '));
}

async function main(): Promise<void> {
  const dataSource = new DataSource({
    type: 'postgres', url: process.env.DATABASE_URL, entities: [Account, AccountEvent, AccountOpened, AccountCredited, AccountNoted],
    synchronize: true, logging: true, logger,
  });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  const report: Record<string, unknown> = {};

  // The first write of a model reads its column defaults once.
  await es.append(AccountOpened.build({ owner: 'warm-up' }));
  let opened!: AccountOpened;
  report.create = await sent(async () => (opened = await es.append(AccountOpened.build({ owner: `O'Brien "</script>" 🦀` }))));
  const id = opened.aggregateId as number;
  const account = await dataSource.manager.findOneByOrFail(Account, { id });
  report.append = await sent(() => es.append(AccountCredited.build({ account, amount: 10.5, tag: "'; DROP TABLE account; --" }), { expectedVersion: 1 }));
  report.instance = { balance: account.balance, version: account.version, tags: account.tags };

  // An unsaved edit of the instance is neither applied nor persisted.
  account.owner = 'edited locally';
  await es.append(AccountCredited.build({ account, amount: 1, tag: 'b' }));
  report.edit = { instance: account.owner, row: (await dataSource.manager.findOneByOrFail(Account, { id })).owner };

  // A stale instance with an expected version: the exact error; without one: written after the other.
  const stale = await dataSource.manager.findOneByOrFail(Account, { id });
  await es.append(AccountCredited.build({ account, amount: 1, tag: 'c' }));
  try {
    await es.append(AccountCredited.build({ account: stale, amount: 1, tag: 'd' }), { expectedVersion: stale.version });
  } catch (error) {
    report.stale = error instanceof ConcurrencyError ? error.message : String(error);
  }

  // 16 writers, each with its own loaded instance, at once.
  const writers = await Promise.all(Array.from({ length: 16 }, () => dataSource.manager.findOneByOrFail(Account, { id })));
  const results = await Promise.allSettled(writers.map((writer, i) => es.append(AccountCredited.build({ account: writer, amount: 1, tag: `w${i}` }))));
  const versions: { version: number }[] = await dataSource.query('SELECT version FROM account_events WHERE account_id = $1 ORDER BY version', [id]);
  report.writers = {
    written: results.filter((result) => result.status === 'fulfilled').length,
    contiguous: versions.every((row, index) => row.version === index + 1),
    events: versions.length,
  };

  // `note` changed by plain SQL: an apply reading it takes the row lock and sees the new value.
  // (After the misses above the row is written under its lock for a second anyway: wait that out.)
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await dataSource.query(`UPDATE account SET note = 'vip' WHERE id = $1`, [id]);
  report.noted = await sent(() => es.append(AccountNoted.build({ account })));
  report.owner = account.owner;

  report.verified = await es.verify(Account);
  await es.close();
  await dataSource.destroy();

  // A migration between two writes changes a returned column's type under the prepared statement
  // (one pooled connection, so that the second write meets the statement the first prepared).
  const migrating = new DataSource({ ...dataSource.options, synchronize: false, extra: { max: 1 } } as typeof dataSource.options);
  await migrating.initialize();
  const es2 = await EventSourcing.attach(migrating);
  const reloaded = await migrating.manager.findOneByOrFail(Account, { id });
  await es2.append(AccountCredited.build({ account: reloaded, amount: 1, tag: 'before migration' }));
  await migrating.query('ALTER TABLE account ALTER COLUMN owner TYPE text');
  errorCodes.length = 0;
  await es2.append(AccountCredited.build({ account: reloaded, amount: 1, tag: 'after migration' }));
  report.migrated = { version: reloaded.version, errors: errorCodes };
  await es2.close();
  await migrating.destroy();
  console.log(JSON.stringify(report));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
