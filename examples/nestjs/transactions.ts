// #region imports
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { ClsPluginTransactional, Transactional, TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsModule } from 'nestjs-cls';
import { EventSourcingModule } from 'typeorm-event-sourcing/nestjs';
import { ActivateSubscription, CreateSubscription } from '../subscriptions/commands';
import { Subscription } from '../subscriptions/model';
// #endregion imports

// #region service
/** A signup creates and activates a subscription: both events commit together, or neither does. */
@Injectable()
export class Signups {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  @Transactional()
  async signUp(userId: number, stripeKey: string): Promise<number> {
    const created = await CreateSubscription.call({ userId });
    const subscription = await this.txHost.tx.findOneByOrFail(Subscription, { id: created!.aggregateId });
    await ActivateSubscription.call({ subscription, stripeKey });
    if (stripeKey.startsWith('declined')) throw new Error(`card ${stripeKey} declined`); // rolls both events back
    return subscription.id;
  }
}
// #endregion service

// #region module
@Module({
  imports: [
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    ClsModule.forRoot({
      global: true,
      plugins: [new ClsPluginTransactional({ imports: [TypeOrmModule], adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: getDataSourceToken() }) })],
    }),
    // es.append and commands called without a manager write in the current @Transactional() one.
    EventSourcingModule.forRootAsync({
      inject: [TransactionHost],
      useFactory: (txHost: TransactionHost<TransactionalAdapterTypeOrm>) => ({
        currentManager: () => (txHost.isTransactionActive() ? txHost.tx : undefined),
      }),
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [Signups],
})
export class TransactionsModule {}
// #endregion module

/** Run by the suite: one signup that commits, one that rolls back; prints what the tables hold. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(TransactionsModule, { logger: false });
  const signups = app.get(Signups);
  const id = await signups.signUp(1, 'sub_ok');
  const failure = await signups.signUp(2, 'declined_card').catch((error: Error) => error.message);
  const dataSource = app.get(getDataSourceToken());
  const [counts] = await dataSource.query('SELECT (SELECT count(*)::int FROM subscription) AS rows, (SELECT count(*)::int FROM subscription_events) AS events');
  await app.close();
  console.log(JSON.stringify({ id, failure, counts }));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
