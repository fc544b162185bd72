import { Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, EventSourcingError, type Reactor, type ReactorContext } from 'typeorm-event-sourcing';
import { ReactorJobsFailedError, waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionRenamed,
  subscriptionEntities,
} from '../support/subscription-model';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `es-wait-for-reactors-${process.pid}-${Date.now()}`;

/** waitForReactors fails loudly on async reactor jobs that failed for good, once each. */
describe('waitForReactors and failed jobs', () => {
  const attempts: { reactor: string; eventId: number; attempt: number }[] = [];
  let dataSource: DataSource;
  let es: EventSourcing;

  class Confirm implements Reactor<SubscriptionActivated> {
    call(event: SubscriptionActivated, ctx: ReactorContext) {
      attempts.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt });
    }
  }
  class AlwaysThrows implements Reactor<SubscriptionRenamed> {
    call(event: SubscriptionRenamed, ctx: ReactorContext) {
      attempts.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt });
      throw new Error(`cannot rename to ${event.stripeKey}`);
    }
  }
  class FailsOnce implements Reactor<SubscriptionCancelled> {
    call(event: SubscriptionCancelled, ctx: ReactorContext) {
      attempts.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt });
      if (ctx.attempt === 1) throw new Error('first attempt fails');
    }
  }

  const dispatcher = () =>
    new Dispatcher()
      .on(SubscriptionActivated, { async: Confirm })
      .on(SubscriptionRenamed, { async: AlwaysThrows, attempts: 2, backoff: 10 })
      .on(SubscriptionCancelled, { async: FailsOnce, attempts: 3, backoff: 10 });

  async function attach(): Promise<EventSourcing> {
    const attached = await EventSourcing.attach(dataSource, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: queueName } });
    attached.worker();
    return attached;
  }

  async function createSubscription(): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
    return dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  }

  async function rename(stripeKey: string): Promise<SubscriptionRenamed> {
    return dataSource.manager.save(SubscriptionRenamed.build({ subscription: await createSubscription(), stripeKey }));
  }

  async function failedJobIds(): Promise<string[]> {
    return (await es.queue.getFailed(0, -1)).map((job) => String(job.id)).sort();
  }

  beforeAll(async () => {
    dataSource = await testDataSource('wait_for_reactors', subscriptionEntities);
    es = await attach();
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
    const url = new URL(redisUrl);
    const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port || 6379) } });
    await queue.obliterate({ force: true });
    await queue.close();
  });

  test('an always-throwing reactor makes it reject with ReactorJobsFailedError listing the job and its reason', async () => {
    const renamed = await rename('sub_broken');

    const error = await rejectionOf(waitForReactors(es));

    expect(error).toBeInstanceOf(ReactorJobsFailedError);
    expect(error).toBeInstanceOf(EventSourcingError);
    expect(error.name).toBe('ReactorJobsFailedError');
    expect(error.code).toBe('REACTOR_JOBS_FAILED');
    const [job] = await es.queue.getFailed(0, -1);
    expect(error.jobs).toEqual([
      {
        jobId: job.id,
        reactor: 'AlwaysThrows',
        table: 'subscription_events',
        eventId: renamed.id,
        failedReason: 'cannot rename to sub_broken',
        attemptsMade: 2,
      },
    ]);
    expect(error.message).toContain(`${job.id}: reactor AlwaysThrows on subscription_events#${renamed.id} after 2 attempt(s): cannot rename to sub_broken`);
    expect(error.message).toContain('allowFailures');
    // It waited for the retries: both attempts ran before it rejected.
    expect(attempts.filter((entry) => entry.eventId === renamed.id).map((entry) => entry.attempt)).toEqual([1, 2]);
    expect(await es.pendingReactorJobs()).toBe(0);
  });

  test('a reported failure does not leak: the next call resolves, the job stays in the failed set', async () => {
    const before = await failedJobIds();
    expect(before).toHaveLength(1);

    const subscription = await createSubscription();
    const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_ok' }));
    await waitForReactors(es);

    expect(attempts.filter((entry) => entry.eventId === activated.id)).toEqual([{ reactor: 'Confirm', eventId: activated.id, attempt: 1 }]);
    expect(await failedJobIds()).toEqual(before);
  });

  test('a new EventSourcing on the same queue does not inherit reported failures', async () => {
    await es.close();
    es = await attach();
    expect(await failedJobIds()).toHaveLength(1);

    await expect(waitForReactors(es)).resolves.toBeUndefined();
  });

  test('only new failures are reported, not the ones reported before', async () => {
    const reportedBefore = await failedJobIds();
    const renamed = await rename('sub_again');

    const error = await rejectionOf(waitForReactors(es));

    expect(error).toBeInstanceOf(ReactorJobsFailedError);
    expect(error.jobs.map((job: { eventId: number }) => job.eventId)).toEqual([renamed.id]);
    expect(error.jobs.map((job: { jobId: string }) => job.jobId)).not.toContain(reportedBefore[0]);
    expect(await failedJobIds()).toHaveLength(2);
  });

  test('with allowFailures: true it resolves, and the allowed failure does not fail the next call', async () => {
    const renamed = await rename('sub_expected');

    await expect(waitForReactors(es, { allowFailures: true })).resolves.toBeUndefined();

    const failed = (await es.queue.getFailed(0, -1)).filter((job) => job.data.id === renamed.id);
    expect(failed.map((job) => [job.failedReason, job.attemptsMade])).toEqual([['cannot rename to sub_expected', 2]]);
    await expect(waitForReactors(es)).resolves.toBeUndefined();
  });

  test('a reactor that fails once and succeeds on its second of 3 attempts resolves', async () => {
    const subscription = await createSubscription();
    const cancelled = await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'flaky' }));
    const failedBefore = await failedJobIds();

    await waitForReactors(es);

    expect(attempts.filter((entry) => entry.eventId === cancelled.id).map((entry) => entry.attempt)).toEqual([1, 2]);
    const [job] = (await es.queue.getJobs(['completed'])).filter((candidate) => candidate.data.id === cancelled.id);
    expect(await job.getState()).toBe('completed');
    expect(await failedJobIds()).toEqual(failedBefore);
  });
});
