import 'reflect-metadata';
import { Client } from 'pg';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType } from 'typeorm-event-sourcing';
import { ensureServices } from '../scripts/ensure-services';
import { ActivateSubscription } from '../examples/subscriptions/commands';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from '../examples/subscriptions/model';

/** A plain entity of the same shape, written with a plain TypeORM save: the baseline. */
@Entity()
class PlainSubscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'int', default: 0 }) version!: number;
}

/** The example's Subscription columns, under directWrites: 'reject' (the database trigger). */
@Aggregate({ directWrites: 'reject' })
@Entity()
class GuardedSubscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'int', nullable: true }) rewardId!: number | null;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) activatedAt!: Date | null;
  @AggregateVersion() version!: number;
}
@EventsOf(() => GuardedSubscription)
abstract class GuardedSubscriptionEvent extends AggregateEvent<GuardedSubscription, 'guardedSubscription'> {}
@EventType('GuardedSubscription.Created', { creates: true })
class GuardedSubscriptionCreated extends GuardedSubscriptionEvent {
  @Data() userId!: number;
  apply(subscription: GuardedSubscription) {
    subscription.userId = this.userId;
    return subscription;
  }
}
@EventType('GuardedSubscription.Activated')
class GuardedSubscriptionActivated extends GuardedSubscriptionEvent {
  @Data() stripeKey!: string;
  apply(subscription: GuardedSubscription) {
    subscription.stripeKey = this.stripeKey;
    subscription.status = 'active';
    subscription.activatedAt = this.createdAt;
    return subscription;
  }
}
const guardedEntities = [GuardedSubscription, GuardedSubscriptionEvent, GuardedSubscriptionCreated, GuardedSubscriptionActivated];

const count = Number(process.env.BENCH_COUNT ?? 500);

/**
 * One write loop in two settings, compared in alternating rounds so that drift of the machine
 * falls on both: the median over rounds of the per-round ratio of their times, with min and max.
 */
async function compare(
  label: string,
  write: (i: number) => Promise<unknown>,
  settings: { base: () => Promise<unknown>; other: () => Promise<unknown> },
  rounds = 15,
): Promise<void> {
  const per = Math.max(20, Math.floor(count / rounds));
  const timed = async (offset: number) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < per; i += 1) await write(offset + i);
    return Number(process.hrtime.bigint() - start);
  };
  await settings.other();
  await timed(0); // warm-up
  const ratios: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    await settings.base();
    const base = await timed((2 * round + 1) * per);
    await settings.other();
    const other = await timed((2 * round + 2) * per);
    ratios.push(other / base);
  }
  ratios.sort((a, b) => a - b);
  const percent = (ratio: number) => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)}%`;
  console.log(
    `${label.padEnd(44)} ${percent(ratios[Math.floor(rounds / 2)])} time, median of ${rounds} rounds of ${per} (min ${percent(ratios[0])}, max ${percent(ratios[rounds - 1])})`,
  );
}

async function database(): Promise<string> {
  const { databaseUrl } = ensureServices();
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('DROP DATABASE IF EXISTS es_bench WITH (FORCE)');
  await client.query('CREATE DATABASE es_bench');
  await client.end();
  const url = new URL(databaseUrl);
  url.pathname = '/es_bench';
  return url.toString();
}

async function time(label: string, work: (i: number) => Promise<unknown>, baseline?: number): Promise<number> {
  for (let i = 0; i < 20; i += 1) await work(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i += 1) await work(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = count / seconds;
  console.log(`${label.padEnd(44)} ${rate.toFixed(0).padStart(7)} /s${baseline ? `   x${(baseline / rate).toFixed(2)} the time of a plain save` : ''}`);
  return rate;
}

async function main(): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url: await database(), entities: [...entities, ...guardedEntities, PlainSubscription], synchronize: true });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  try {
    console.log(`${count} sequential writes each, one transaction per write, on one aggregate\n`);
    const plain = await dataSource.manager.save(dataSource.manager.create(PlainSubscription, {}));
    const baseline = await time('plain TypeORM save of one changed row', (i) => {
      plain.stripeKey = `k${i}`;
      plain.version += 1;
      return dataSource.manager.save(plain);
    });
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await time('manager.save(event)', (i) => dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: `k${i}` })), baseline);
    await time('es.append(event, { expectedVersion })', (i) =>
      es.append(SubscriptionActivated.build({ subscription, stripeKey: `a${i}` }), { expectedVersion: subscription.version }), baseline);
    await time('event creating its aggregate', (i) => dataSource.manager.save(SubscriptionCreated.build({ userId: i })), baseline);
    const fresh = await Promise.all(Array.from({ length: count + 20 }, (_, i) => dataSource.manager.save(SubscriptionCreated.build({ userId: i }))));
    const targets = await dataSource.manager.findBy(Subscription, {});
    const pending = targets.filter((s) => fresh.some((e) => e.aggregateId === s.id));
    await time('ActivateSubscription.call (a command)', (i) => ActivateSubscription.call({ subscription: pending[i], stripeKey: `c${i}` }), baseline);
    const guarded = await dataSource.manager.save(GuardedSubscriptionCreated.build({ userId: 1 }));
    const guardedSubscription = await dataSource.manager.findOneByOrFail(GuardedSubscription, { id: guarded.aggregateId });
    // The same writes to the same table, with the directWrites: 'reject' trigger off and on.
    const trigger = (enabled: boolean) => dataSource.query(`ALTER TABLE guarded_subscription ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER es_direct_writes`);
    await compare(
      "directWrites: 'reject' trigger on event writes",
      (i) => dataSource.manager.save(GuardedSubscriptionActivated.build({ guardedSubscription, stripeKey: `g${i}` })),
      { base: () => trigger(false), other: () => trigger(true) },
    );
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
