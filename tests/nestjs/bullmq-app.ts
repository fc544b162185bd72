// EventSourcingModule beside BullModule (@nestjs/bullmq): the reactor queue reuses BullModule's
// connection and is injectable with @InjectQueue; run by tests/integration/nestjs-bullmq.test.ts.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BullModule, InjectQueue } from '@nestjs/bullmq';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Queue } from 'bullmq';
import { EventSourcing } from '../../src';
import { waitForReactors } from '../../src/testing';
import { EVENT_SOURCING, EventSourcingModule, Reactor } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

const redis = new URL(process.env.REDIS_URL!);
const queueName = process.env.QUEUE_NAME!;

@Reactor(SubscriptionActivated, { async: true })
@Injectable()
class Confirm {
  static runs = 0;
  async call(): Promise<void> {
    Confirm.runs += 1;
  }
}

@Injectable()
class Dashboard {
  constructor(@InjectQueue(queueName) readonly queue: Queue) {}
}

@Module({
  imports: [
    // The application's own BullMQ setup: the reactor queue names no connection and takes this one.
    BullModule.forRoot({ connection: { host: redis.hostname, port: Number(redis.port) } }),
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({ queue: { name: queueName }, worker: { enabled: true } }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Confirm, Dashboard],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const created = await es.append(SubscriptionCreated.build({}));
  const subscription = await es.dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_bull' }));
  await waitForReactors(es, { timeout: 20_000 });
  const dashboard = app.get(Dashboard);
  const result = {
    runs: Confirm.runs,
    sameQueue: dashboard.queue === es.queue,
    completed: await dashboard.queue.getCompletedCount(),
    port: (es.queue.opts.connection as { port?: number }).port,
  };
  await app.close();
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
