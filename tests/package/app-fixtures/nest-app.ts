// The pack test's NestJS app: the installed package's module in a Nest application with an
// injected reactor, hostile input through it, and a SIGTERM-free close through app.close().
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getRepositoryToken, TypeOrmModule } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { EventSourcing, type ReactorContext } from 'typeorm-event-sourcing';
import { EVENT_SOURCING, EventSourcingModule, InjectEventSourcing, Reactor } from 'typeorm-event-sourcing/nestjs';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

@Injectable()
class Receipts {
  readonly sent: string[] = [];
}

@Reactor(SubscriptionActivated, { async: true })
@Injectable()
class SendReceipt {
  constructor(private readonly receipts: Receipts, @InjectEventSourcing() private readonly es: EventSourcing) {}
  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    const state = await this.es.stateAt(Subscription, event.aggregateId, { version: event.version });
    this.receipts.sent.push(`${state?.stripeKey} (${ctx.mode})`);
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRootAsync({
      useFactory: async () => ({ queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME }, worker: { enabled: true } }),
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Receipts, SendReceipt],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const subscriptions = app.get<Repository<Subscription>>(getRepositoryToken(Subscription));
  const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;
  const created = await es.append(SubscriptionCreated.build({ note: hostile }));
  const subscription = await subscriptions.findOneByOrFail({ id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: hostile }));
  await waitForReactors(es, { timeout: 20_000 });
  const receipts = app.get(Receipts).sent;
  const row = await subscriptions.findOneByOrFail({ id: subscription.id });
  await app.close();
  console.log(JSON.stringify({ receipts, row: { status: row.status, stripeKey: row.stripeKey, version: row.version }, closed: !es.dataSource.isInitialized }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
