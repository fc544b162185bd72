// The @nestjs/cqrs bridge: @EventsHandler classes of the library's events run as durable async
// reactors (cqrsEventsHandlers: true); run by tests/integration/nestjs-cqrs.test.ts.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { TypeOrmModule } from '@nestjs/typeorm';
import { EventSourcing } from '../../src';
import { waitForReactors } from '../../src/testing';
import { EVENT_SOURCING, EventSourcingModule } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

@Injectable()
class Ledger {
  readonly lines: string[] = [];
}

/** An existing handler, unchanged: now a job after commit, retried when it throws. */
@EventsHandler(SubscriptionActivated)
class WelcomeOnActivation implements IEventHandler<SubscriptionActivated> {
  static attempts = 0;
  constructor(private readonly ledger: Ledger) {}
  async handle(event: SubscriptionActivated): Promise<void> {
    WelcomeOnActivation.attempts += 1;
    if (WelcomeOnActivation.attempts === 1) throw new Error('mail server down');
    this.ledger.lines.push(`welcome ${event.stripeKey} (attempt ${WelcomeOnActivation.attempts})`);
  }
}

/** A plain CQRS event and its handler: left to the EventBus. */
class UserLoggedIn {
  constructor(readonly user: string) {}
}
@EventsHandler(UserLoggedIn)
class AuditLogin implements IEventHandler<UserLoggedIn> {
  constructor(private readonly ledger: Ledger) {}
  handle(event: UserLoggedIn): void {
    this.ledger.lines.push(`login ${event.user}`);
  }
}

@Module({
  imports: [
    CqrsModule.forRoot(),
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({
      queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME, backoff: 10 },
      worker: { enabled: true },
      cqrsEventsHandlers: true,
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Ledger, WelcomeOnActivation, AuditLogin],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const created = await es.append(SubscriptionCreated.build({}));
  const subscription = await es.dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_cqrs' }));
  await waitForReactors(es, { timeout: 20_000 });
  app.get(EventBus).publish(new UserLoggedIn('ada'));
  const jobs = (await es.queue.getJobs(['completed'])).map((job) => ({ name: job.name, attemptsMade: job.attemptsMade }));
  const lines = app.get(Ledger).lines;
  await app.close();
  console.log(JSON.stringify({ lines, jobs }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
