// Reactors as Nest providers with dependencies, run by nestjs-injection.test.ts: an async
// reactor depending on a service that itself injects the EventSourcing instance (whose factory
// registers that very reactor), and a trigger reactor that throws, rolling the write back.
// Prints one JSON line.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { EventSourcing, ReactorError, type ReactorContext } from '../../src';
import { waitForReactors } from '../../src/testing';
import { EVENT_SOURCING, EventSourcingModule, InjectEventSourcing, Reactor } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

@Injectable()
class SubscriptionService {
  constructor(
    @InjectEventSourcing() private readonly es: EventSourcing,
    @InjectRepository(Subscription) private readonly subscriptions: Repository<Subscription>,
  ) {}

  async describe(id: number): Promise<string> {
    const history = await this.es.history(Subscription, id);
    const row = await this.subscriptions.findOneByOrFail({ id });
    return `${id} ${row.status} v${row.version}: ${history.map((event) => event.type).join(', ')}`;
  }
}

@Injectable()
class Outbox {
  readonly sent: string[] = [];
}

@Reactor(SubscriptionActivated, { async: true, attempts: 2, backoff: 10 })
@Injectable()
class ActivationNotice {
  constructor(private readonly subscriptions: SubscriptionService, private readonly outbox: Outbox) {}
  async call(event: SubscriptionActivated): Promise<void> {
    this.outbox.sent.push(await this.subscriptions.describe(event.aggregateId));
  }
}

@Reactor(SubscriptionActivated, { trigger: true })
@Injectable()
class RefuseTestKeys {
  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    // A write of the reactor's own, in the transaction: rolled back with the event.
    await ctx.manager.query(`UPDATE subscription SET "stripeKey" = 'touched' WHERE id = $1`, [event.aggregateId]);
    if (event.stripeKey.startsWith('test_')) throw new Error(`test key ${event.stripeKey} refused`);
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({ queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME }, worker: { enabled: true } }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [SubscriptionService, Outbox, ActivationNotice, RefuseTestKeys],
})
class InjectionModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(InjectionModule, { logger: ['error', 'warn'] });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const repository = app.get(SubscriptionService)['subscriptions'] as Repository<Subscription>;

  const good = await repository.findOneByOrFail({ id: (await es.append(SubscriptionCreated.build({}))).aggregateId });
  await es.append(SubscriptionActivated.build({ subscription: good, stripeKey: 'sub_live' }));

  const bad = await repository.findOneByOrFail({ id: (await es.append(SubscriptionCreated.build({}))).aggregateId });
  const refused = SubscriptionActivated.build({ subscription: bad, stripeKey: 'test_1' });
  let error: Record<string, unknown> = {};
  try {
    await es.append(refused);
  } catch (caught) {
    const e = caught as ReactorError;
    error = { reactorError: caught instanceof ReactorError, reactor: e.reactor, message: e.message };
  }
  await waitForReactors(es, { timeout: 20_000 });
  const stored = await es.dataSource.query(
    `SELECT s.status, s.version, s."stripeKey", (SELECT count(*)::int FROM es_outbox) AS outbox,
            (SELECT count(*)::int FROM subscription_events e WHERE e.subscription_id = s.id) AS events
       FROM subscription s WHERE s.id = $1`,
    [bad.id],
  );
  const result = {
    sent: app.get(Outbox).sent,
    error,
    refusedEvent: { id: refused.id ?? null, version: refused.version ?? null },
    badInstance: { status: bad.status, version: bad.version },
    badStored: stored[0],
  };
  await app.close();
  console.log(JSON.stringify(result));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
