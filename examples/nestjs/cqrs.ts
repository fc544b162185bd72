// #region imports
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { TypeOrmModule } from '@nestjs/typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { EVENT_SOURCING, EventSourcingModule } from 'typeorm-event-sourcing/nestjs';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { CreateSubscription } from '../subscriptions/commands';
import { Subscription, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

@Injectable()
export class Analytics {
  readonly tracked: string[] = [];
  track(what: string): void {
    this.tracked.push(what);
  }
}

// #region handler
/** An @EventsHandler as a team on @nestjs/cqrs already has it: unchanged, now a durable job. */
@EventsHandler(SubscriptionCreated)
export class TrackSignup implements IEventHandler<SubscriptionCreated> {
  constructor(private readonly analytics: Analytics) {}
  handle(event: SubscriptionCreated): void {
    this.analytics.track(`signup of user ${event.userId}`);
  }
}
// #endregion handler

// #region module
@Module({
  imports: [
    CqrsModule.forRoot(),
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({
      queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME },
      worker: { enabled: true },
      cqrsEventsHandlers: true, // @EventsHandler classes of the library's events run as async reactors
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Analytics, TrackSignup],
})
export class CqrsBridgeModule {}
// #endregion module

/** Run by the suite: a command whose event the handler tracks, through a job. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(CqrsBridgeModule, { logger: false });
  await CreateSubscription.call({ userId: 7 });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  await waitForReactors(es, { timeout: 20_000 });
  const jobs = (await es.queue.getJobs(['completed'])).map((job) => job.name);
  const tracked = app.get(Analytics).tracked;
  await app.close();
  console.log(JSON.stringify({ tracked, jobs }));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
