// #region imports
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { EventSourcingModule } from 'typeorm-event-sourcing/nestjs';
import { Subscription } from '../subscriptions/model';
import { SentMail } from '../subscriptions/sent-mail';
import { MailService } from './mail.service';
import { SubscriptionConfirmation } from './subscription-confirmation.reactor';
import { SubscriptionsController } from './subscriptions.controller';
// #endregion imports

// #region app-module
/**
 * One module for both processes: the API (`main.ts`) writes events and leaves async reactors to
 * the outbox; the worker (`worker.ts`, ROLE=worker) runs them.
 */
@Module({
  imports: [
    // synchronize keeps the example short; an application runs migrations (docs/schema.md).
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: true }),
    EventSourcingModule.forRoot({
      queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME ?? 'subscriptions' },
      worker: { enabled: process.env.ROLE === 'worker', concurrency: 5 },
    }),
    // The aggregate, its events class and every event class, for autoLoadEntities.
    EventSourcingModule.forFeature([Subscription]),
    TypeOrmModule.forFeature([SentMail]),
  ],
  controllers: [SubscriptionsController],
  providers: [MailService, SubscriptionConfirmation],
})
export class AppModule {}
// #endregion app-module
