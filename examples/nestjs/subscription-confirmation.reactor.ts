// #region imports
import { Injectable } from '@nestjs/common';
import type { ReactorContext } from 'typeorm-event-sourcing';
import { Reactor } from 'typeorm-event-sourcing/nestjs';
import { Subscription, SubscriptionActivated } from '../subscriptions/model';
import { MailService } from './mail.service';
// #endregion imports

// #region reactor
/** Async: runs in the worker process, after the activation committed, with MailService injected. */
@Reactor(SubscriptionActivated, { async: true, attempts: 5, backoff: 1000 })
@Injectable()
export class SubscriptionConfirmation {
  constructor(private readonly mail: MailService) {}

  async call(event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
    await this.mail.send(ctx.manager, { reactor: ctx.reactor, eventId: event.id }, `user-${subscription.userId}@example.com`, 'Your subscription is active');
  }
}
// #endregion reactor
