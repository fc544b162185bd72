// Release 1 of an app, as a user wrote it before its events changed: a Subscription whose
// activation is stored as 'Subscription.Started' { stripeKey }, and a pause event. The pack test
// runs it, then release 2 (evolution-release2.ts) on the same database.
import 'reflect-metadata';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType } from 'typeorm-event-sourcing';

@Aggregate()
@Entity()
class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Subscription)
abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

@EventType('Subscription.Created', { creates: true })
class SubscriptionCreated extends SubscriptionEvent {
  @Data() userId!: number;
  apply(subscription: Subscription) {
    subscription.userId = this.userId;
    return subscription;
  }
}

@EventType('Subscription.Started')
class SubscriptionStarted extends SubscriptionEvent {
  @Data() stripeKey!: string;
  apply(subscription: Subscription) {
    subscription.status = 'active';
    subscription.stripeKey = this.stripeKey;
    return subscription;
  }
}

@EventType('Subscription.Paused')
class SubscriptionPaused extends SubscriptionEvent {
  @Data() reason!: string;
  apply(subscription: Subscription) {
    subscription.status = 'paused';
    return subscription;
  }
}

export const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;

async function main() {
  const dataSource = new DataSource({
    type: 'postgres',
    url: process.env.DATABASE_URL,
    entities: [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionStarted, SubscriptionPaused],
    synchronize: true,
  });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  await es.schema.create();
  try {
    for (const userId of [1, 2, 3]) {
      const created = await es.append(SubscriptionCreated.build({ userId }));
      const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
      if (userId < 3) await es.append(SubscriptionStarted.build({ subscription, stripeKey: userId === 1 ? hostile : `sub_${userId}` }));
      if (userId === 2) await es.append(SubscriptionPaused.build({ subscription, reason: 'holiday' }));
    }
    console.log(JSON.stringify({ events: (await dataSource.query('SELECT count(*)::int AS n FROM subscription_events'))[0].n }));
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
