// forRootAsync with imports/inject/useFactory and a named DataSource, run by
// nestjs-async-config.test.ts: the queue's Redis URL and name come from a config module's token,
// the instance attaches to the DataSource named 'events' (not the default one, which is on
// another database), and repositories of that DataSource are injected. Prints one JSON line.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken, InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource, Repository } from 'typeorm';
import { EventSourcing } from '../../src';
import { waitForReactors } from '../../src/testing';
import { EVENT_SOURCING, EventSourcingModule, InjectEventSourcing, Reactor } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

const QUEUE_CONFIG = 'QUEUE_CONFIG';
interface QueueConfig {
  redisUrl: string;
  queueName: string;
}

@Module({
  providers: [{ provide: QUEUE_CONFIG, useFactory: (): QueueConfig => ({ redisUrl: process.env.REDIS_URL!, queueName: process.env.QUEUE_NAME! }) }],
  exports: [QUEUE_CONFIG],
})
class QueueConfigModule {}

@Injectable()
class Subscriptions {
  constructor(
    @InjectEventSourcing() private readonly es: EventSourcing,
    @InjectRepository(Subscription, 'events') readonly repository: Repository<Subscription>,
  ) {}

  async activate(stripeKey: string): Promise<Subscription> {
    const created = await this.es.append(SubscriptionCreated.build({}));
    const subscription = await this.repository.findOneByOrFail({ id: created.aggregateId });
    await this.es.append(SubscriptionActivated.build({ subscription, stripeKey }));
    return subscription;
  }
}

@Injectable()
class Seen {
  readonly rows: string[] = [];
}

@Reactor(SubscriptionActivated, { async: true, attempts: 2, backoff: 10 })
@Injectable()
class ActivationSeen {
  constructor(private readonly subscriptions: Subscriptions, private readonly seen: Seen) {}
  async call(event: SubscriptionActivated): Promise<void> {
    const row = await this.subscriptions.repository.findOneByOrFail({ id: event.aggregateId });
    this.seen.rows.push(`${row.id} ${row.status} ${row.stripeKey} v${row.version}`);
  }
}

const factoryCalls: unknown[] = [];

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    TypeOrmModule.forRoot({ name: 'events', type: 'postgres', url: process.env.EVENTS_DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRootAsync({
      dataSource: 'events',
      imports: [QueueConfigModule],
      inject: [QUEUE_CONFIG],
      useFactory: async (config: QueueConfig) => {
        factoryCalls.push(config);
        return { queue: { connection: config.redisUrl, name: config.queueName }, worker: { enabled: true } };
      },
    }),
    EventSourcingModule.forFeature([Subscription], 'events'),
  ],
  providers: [Subscriptions, Seen, ActivationSeen],
})
class AsyncModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AsyncModule, { logger: ['error', 'warn'] });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const events = app.get<DataSource>(getDataSourceToken('events'));
  const defaultDataSource = app.get<DataSource>(getDataSourceToken());
  const subscription = await app.get(Subscriptions).activate('sub_async');
  await waitForReactors(es, { timeout: 20_000 });
  const tables = async (dataSource: DataSource) =>
    (await dataSource.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('subscription', 'subscription_events', 'es_outbox')`))[0].n;
  const result = {
    factoryCalls,
    attachedToEvents: es.dataSource === events,
    eventRows: (await events.query('SELECT type FROM subscription_events ORDER BY version')).map((row: { type: string }) => row.type),
    tablesInEvents: await tables(events),
    tablesInDefault: await tables(defaultDataSource),
    instance: { status: subscription.status, version: subscription.version },
    seen: app.get(Seen).rows,
  };
  await app.close();
  console.log(JSON.stringify({ ...result, destroyed: !events.isInitialized && !defaultDataSource.isInitialized }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
