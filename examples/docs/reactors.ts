// #region imports
import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { dispatcher } from '../subscriptions/dispatcher';
import { Subscription, SubscriptionActivated, SubscriptionCreated } from '../subscriptions/model';
import { Reward, RewardCreated } from '../subscriptions/reward';
import { SentMail } from '../subscriptions/sent-mail';
import { UserRegistered } from '../subscriptions/user';
// #endregion imports

/** docs/reactors.md: the dispatcher, a worker, and what the reactors did. */
export async function run(dataSource: DataSource, redisUrl: string) {
  // #region attach
  const es = await EventSourcing.attach(dataSource, {
    dispatcher,
    // No `name`: the default queue name is derived from the database, so every process of this
    // database shares the queue and no other database does.
    queue: { connection: redisUrl, attempts: 3, backoff: 1000 },
  });
  const worker = es.worker({ concurrency: 5 }); // a BullMQ Worker, plus an outbox relay
  // #endregion attach
  try {
    const user = await dataSource.manager.save(UserRegistered.build({ email: 'ada@example.com', name: 'Ada' }));
    const reward = await dataSource.manager.save(RewardCreated.build({ title: 'Signed poster' }));
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: user.aggregateId, rewardId: reward.aggregateId }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });

    // #region with-metadata
    const activated = await es.withMetadata({ requestId: 'req-42' }, () =>
      dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123' })),
    );
    // The trigger reactor recounted the reward in the same transaction; its event says why:
    // metadata { requestId: 'req-42', causationId: 'subscription_events/2', correlationId: 'subscription_events/2' }
    // #endregion with-metadata

    // #region wait
    await waitForReactors(es); // from 'typeorm-event-sourcing/testing': every async job completed, or ReactorJobsFailedError
    const mails = await dataSource.manager.find(SentMail, { order: { reactor: 'ASC' } });
    // [NewSubscriberNotification to creator@example.com, SubscriptionConfirmation to ada@example.com]
    // #endregion wait

    const rewardHistory = await es.history(Reward, reward.aggregateId);
    return {
      activatedMetadata: activated.metadata,
      rewardCount: (await dataSource.manager.findOneByOrFail(Reward, { id: reward.aggregateId })).subscriberCount,
      recountMetadata: rewardHistory[1]?.metadata,
      mails: mails.map((mail) => `${mail.reactor} ${mail.recipient}`),
      workerRunning: worker.isRunning(),
    };
  } finally {
    await es.close(); // closes the worker, the relay and the queue
  }
}
