// A Nest application context on the library's module, run as a child process by
// tests/integration/nestjs-module.test.ts (NestJS 12 is ESM: jest cannot load it, node can).
// Prints one JSON line of what it saw.
import 'reflect-metadata';
import { Injectable, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getRepositoryToken, TypeOrmModule } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { Attribute, Command, EventSourcing, EventSourcingConfigError, type ReactorContext } from '../../src';
import { waitForReactors } from '../../src/testing';
import { EVENT_SOURCING, EventSourcingModule, InjectEventSourcing, Reactor } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

@Injectable()
class MailService {
  readonly sent: string[] = [];
  send(to: string, subject: string): void {
    this.sent.push(`${to}: ${subject}`);
  }
}

@Reactor(SubscriptionActivated, { async: true, attempts: 2, backoff: 10 })
@Injectable()
class SubscriptionConfirmation {
  constructor(private readonly mail: MailService, @InjectEventSourcing() private readonly es: EventSourcing) {}
  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    // Dependencies injected by Nest, the EventSourcing instance among them.
    const history = await this.es.history(Subscription, event.aggregateId);
    this.mail.send(`subscriber ${event.aggregateId}`, `active after ${history.length} events (attempt ${ctx.attempt})`);
  }
}

@Reactor(SubscriptionActivated, { trigger: true })
@Injectable()
class CountActivations {
  static count = 0;
  async call(_event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    CountActivations.count += (await ctx.manager.query('SELECT 1 AS one')).length;
  }
}

@Injectable()
class Pricing {
  keyFor(plan: string): string {
    return `price_${plan}`;
  }
}

/** A command with a service injected: a transient provider, one instance per call. */
@Injectable({ scope: Scope.TRANSIENT })
class ActivateOnPlan extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() plan!: string;
  constructor(private readonly pricing: Pricing) {
    super();
  }
  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.pricing.keyFor(this.plan) });
  }
}

/** The same as a singleton: refused, its attributes would be shared by concurrent calls. */
@Injectable()
class SharedCommand extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: 'shared' });
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({ queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME }, worker: { enabled: true, concurrency: 2 } }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [MailService, SubscriptionConfirmation, CountActivations, Pricing, ActivateOnPlan, SharedCommand],
})
class AppModule {}

@Module({
  imports: [
    TypeOrmModule.forRoot({ name: 'other', type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true }),
    EventSourcingModule.forRoot({ dataSource: 'other' }),
    EventSourcingModule.forRootAsync({ dataSource: 'other', useFactory: async () => ({}) }),
    EventSourcingModule.forFeature([Subscription], 'other'),
  ],
})
class TwoModulesOneDataSource {}

@Reactor(SubscriptionActivated, { trigger: true })
@Injectable({ scope: Scope.TRANSIENT })
class PerCallReactor {
  async call(): Promise<void> {}
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ name: 'scoped', type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true }),
    EventSourcingModule.forRoot({ dataSource: 'scoped' }),
    EventSourcingModule.forFeature([Subscription], 'scoped'),
  ],
  providers: [PerCallReactor],
})
class ScopedReactorModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  app.enableShutdownHooks();
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const repository = app.get<Repository<Subscription>>(getRepositoryToken(Subscription));
  const created = await es.append(SubscriptionCreated.build({}));
  const subscription = await repository.findOneByOrFail({ id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }));
  await waitForReactors(es, { timeout: 20_000 });
  const second = await repository.findOneByOrFail({ id: (await es.append(SubscriptionCreated.build({}))).aggregateId });
  const onPlan = await ActivateOnPlan.call({ subscription: second, plan: 'pro' });
  const shared = await SharedCommand.call({ subscription: second }).catch((error: Error) => `${error.name}: ${error.message}`);
  await waitForReactors(es, { timeout: 20_000 });
  const mail = app.get(MailService);
  const eventRepository = app.get<Repository<SubscriptionCreated>>(getRepositoryToken(SubscriptionCreated));
  await app.close();
  let afterClose = '';
  try {
    await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_2' }));
  } catch (error) {
    afterClose = `${(error as Error).name}: ${(error as Error).message}`;
  }
  let twoModules = '';
  try {
    const other = await NestFactory.createApplicationContext(TwoModulesOneDataSource, { logger: false, abortOnError: false });
    await other.close();
  } catch (error) {
    twoModules = `${error instanceof EventSourcingConfigError ? 'EventSourcingConfigError' : (error as Error).name}: ${(error as Error).message}`;
  }
  let scoped = '';
  try {
    const other = await NestFactory.createApplicationContext(ScopedReactorModule, { logger: false, abortOnError: false });
    await other.init();
    await other.close();
  } catch (error) {
    scoped = `${error instanceof EventSourcingConfigError ? 'EventSourcingConfigError' : (error as Error).name}: ${(error as Error).message.split(' (')[0]}`;
  }
  console.log(
    JSON.stringify({
      scoped,
      mail: mail.sent,
      commandProvider: onPlan?.stripeKey,
      shared,
      triggers: CountActivations.count,
      row: { status: subscription.status, version: subscription.version },
      eventRepository: typeof eventRepository.find,
      afterClose,
      twoModules,
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
