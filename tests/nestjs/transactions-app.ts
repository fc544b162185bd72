// es.append and commands joining the ambient transaction of @nestjs-cls/transactional, through the
// `currentManager` option; run by tests/integration/nestjs-transactions.test.ts.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { ClsPluginTransactional, Transactional, TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsModule } from 'nestjs-cls';
import { Attribute, Command, EventSourcing } from '../../src';
import { EVENT_SOURCING, EventSourcingModule, InjectEventSourcing } from '../../src/nestjs';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

class ActivateSubscription extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() stripeKey!: string;
  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey });
  }
}

@Injectable()
class Subscriptions {
  constructor(
    @InjectEventSourcing() private readonly es: EventSourcing,
    private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>,
  ) {}

  /** Creates and activates in one transaction; `fail` throws after both writes. */
  @Transactional()
  async open(stripeKey: string, fail: boolean): Promise<{ seenInside: number }> {
    const created = await this.es.append(SubscriptionCreated.build({}));
    const subscription = await this.txHost.tx.findOneByOrFail(Subscription, { id: created.aggregateId });
    await ActivateSubscription.call({ subscription, stripeKey });
    // The transaction sees its own writes before COMMIT.
    const [{ n }] = await this.txHost.tx.query('SELECT count(*)::int AS n FROM subscription_events WHERE subscription_id = $1', [created.aggregateId]);
    if (fail) throw new Error('the request failed after both writes');
    return { seenInside: n };
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    ClsModule.forRoot({
      global: true,
      plugins: [new ClsPluginTransactional({ imports: [TypeOrmModule], adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: getDataSourceToken() }) })],
    }),
    EventSourcingModule.forRootAsync({
      inject: [TransactionHost],
      useFactory: (txHost: TransactionHost<TransactionalAdapterTypeOrm>) => ({
        currentManager: () => (txHost.isTransactionActive() ? txHost.tx : undefined),
      }),
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Subscriptions],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const subscriptions = app.get(Subscriptions);
  const counts = async () => (await es.dataSource.query('SELECT (SELECT count(*)::int FROM subscription) AS rows, (SELECT count(*)::int FROM subscription_events) AS events'))[0];
  const committed = await subscriptions.open('sub_ok', false);
  const afterCommit = await counts();
  let failure = '';
  try {
    await subscriptions.open('sub_failed', true);
  } catch (error) {
    failure = (error as Error).message;
  }
  const afterRollback = await counts();
  // Outside any transaction, es.append writes on its own as before.
  const alone = await es.append(SubscriptionCreated.build({}));
  await app.close();
  console.log(JSON.stringify({ committed, afterCommit, failure, afterRollback, alone: alone.version }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
