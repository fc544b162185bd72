import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, type Reactor, type ReactorContext } from '../../src';
import { allEntities } from '../../examples/subscriptions/entities';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from '../../examples/subscriptions/model';
import { NewSubscriberNotification, RecountRewardSubscribers, SubscriptionConfirmation } from '../../examples/subscriptions/reactors';
import { RewardCreated } from '../../examples/subscriptions/reward';
import { UserRegistered } from '../../examples/subscriptions/user';
import { testDataSource } from './database';

/**
 * An async reactor that writes an event: the second level of a causation chain, so that `trace`
 * has an event written by a job (not in its cause's transaction) to show.
 */
export class WelcomeGift implements Reactor<SubscriptionActivated> {
  async call(_event: SubscriptionActivated, ctx: ReactorContext): Promise<void> {
    await ctx.manager.save(RewardCreated.build({ title: 'welcome gift' }));
  }
}

/** The registrations of examples/subscriptions/dispatcher.ts, plus WelcomeGift. */
export function cliTestDispatcher(): Dispatcher {
  return new Dispatcher()
    .on(SubscriptionActivated, { async: SubscriptionConfirmation })
    .on(SubscriptionActivated, { async: NewSubscriberNotification, attempts: 5, backoff: 2000 })
    .on([SubscriptionActivated, SubscriptionCancelled], { trigger: RecountRewardSubscribers })
    .on(SubscriptionActivated, { async: WelcomeGift });
}

/** A fresh database with the example's tables and the library's schema, and an instance attached to it. */
export interface CliProject {
  dataSource: DataSource;
  es: EventSourcing;
  /** The environment the example DataSource module (examples/cli/data-source.ts) reads. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function openCliProject(name: string, dispatcher = cliTestDispatcher()): Promise<CliProject> {
  const dataSource = await testDataSource(name, allEntities);
  // The default queue name is derived from the database: each test file's database has its own.
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: process.env.REDIS_URL } });
  return {
    dataSource,
    es,
    env: { DATABASE_URL: (dataSource.options as { url: string }).url, REDIS_URL: process.env.REDIS_URL! },
    async close() {
      await es.queue.obliterate({ force: true }).catch(() => undefined);
      await es.close();
      await dataSource.destroy();
    },
  };
}

/** A backer of a reward with an active subscription; returns the subscription. */
export async function activeSubscription(
  project: Pick<CliProject, 'dataSource' | 'es'>,
  { email, rewardTitle, stripeKey, requestId }: { email: string; rewardTitle: string; stripeKey: string; requestId: string },
): Promise<Subscription> {
  const { dataSource, es } = project;
  const user = await dataSource.manager.save(UserRegistered.build({ email, name: email.split('@')[0] }));
  const reward = await dataSource.manager.save(RewardCreated.build({ title: rewardTitle }));
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: user.aggregateId, rewardId: reward.aggregateId }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  await es.withMetadata({ requestId }, () => dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey })));
  return subscription;
}
