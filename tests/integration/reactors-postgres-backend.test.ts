import type { Job } from 'bullmq';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, type Reactor, type ReactorContext } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
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

/** BullMQ's PostgreSQL backend: the queue lives in the DataSource's own database, schema `bullmq`. */
describe("async reactors on BullMQ's PostgreSQL backend", () => {
  const runs: { reactor: string; eventId: number; attempt: number; jobId: string | undefined }[] = [];
  const queueName = `es-reactors-pg-${process.pid}-${Date.now()}`;
  let dataSource: DataSource;
  let es: EventSourcing;

  class Confirm implements Reactor<SubscriptionActivated> {
    call(event: SubscriptionActivated, ctx: ReactorContext) {
      runs.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt, jobId: ctx.job?.id });
    }
  }
  class Flaky implements Reactor<SubscriptionCancelled> {
    call(event: SubscriptionCancelled, ctx: ReactorContext) {
      runs.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt, jobId: ctx.job?.id });
      if (ctx.attempt === 1) throw new Error('first attempt fails');
    }
  }
  class Broken implements Reactor<SubscriptionRenamed> {
    call(event: SubscriptionRenamed, ctx: ReactorContext) {
      runs.push({ reactor: ctx.reactor, eventId: event.id, attempt: ctx.attempt, jobId: ctx.job?.id });
      throw new Error(`cannot rename to ${event.stripeKey}`);
    }
  }

  const runsOf = (eventId: number) => runs.filter((entry) => entry.eventId === eventId);

  async function jobsOf(eventId: number): Promise<Job[]> {
    const jobs = await es.queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed']);
    return jobs.filter((job) => job.data.id === eventId);
  }

  async function createSubscription(): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
    return dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  }

  beforeAll(async () => {
    dataSource = await testDataSource('reactors_pg_backend', subscriptionEntities);
    es = await EventSourcing.attach(dataSource, {
      dispatcher: new Dispatcher()
        .on(SubscriptionActivated, { async: Confirm })
        .on(SubscriptionCancelled, { async: Flaky, attempts: 3, backoff: 10 })
        .on(SubscriptionRenamed, { async: Broken, attempts: 2, backoff: 10 }),
      queue: { backend: 'postgres', name: queueName },
    });
    es.worker();
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  test("the queue's tables are in the DataSource's own database, schema bullmq", async () => {
    // BullMQ migrates the schema when the backend first connects.
    await es.queue.waitUntilReady();
    const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM information_schema.tables WHERE table_schema = 'bullmq'`);
    expect(count).toBeGreaterThan(0);
  });

  test('an async reactor runs once after COMMIT; a rolled-back event enqueues nothing', async () => {
    const subscription = await createSubscription();
    const identity: string = (await dataSource.query('SELECT id::text AS id FROM es_identity'))[0].id;
    let rolledBack!: SubscriptionActivated;
    await rejectionOf(
      dataSource.transaction(async (manager) => {
        rolledBack = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_never' }));
        throw new Error('roll back');
      }),
    );

    let activated!: SubscriptionActivated;
    await dataSource.transaction(async (manager) => {
      activated = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_pg' }));
      expect(await jobsOf(activated.id)).toEqual([]);
    });
    await waitForReactors(es);

    expect(runsOf(rolledBack.id)).toEqual([]);
    expect(await jobsOf(rolledBack.id)).toEqual([]);
    expect(runsOf(activated.id)).toEqual([{ reactor: 'Confirm', eventId: activated.id, attempt: 1, jobId: expect.any(String) }]);
    const [job] = await jobsOf(activated.id);
    expect(job.id).toBe(runsOf(activated.id)[0].jobId);
    expect(job.id).toContain(identity);
    expect(job.id).not.toContain(':');
    expect(job.data).toEqual({
      table: 'subscription_events',
      id: activated.id,
      type: 'Subscription.Activated',
      reactor: 'Confirm',
      position: activated.position,
      key: expect.stringMatching(/^[0-9a-f-]{36}$/),
      signature: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(job.id).toBe(`${identity}.${activated.position}.Confirm.${job.data.key}`);
    expect(await job.getState()).toBe('completed');
  });

  test('retry then success: attempt 1 fails, attempt 2 completes', async () => {
    const subscription = await createSubscription();

    const cancelled = await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'pg' }));
    await waitForReactors(es);

    expect(runsOf(cancelled.id).map((entry) => entry.attempt)).toEqual([1, 2]);
    const [job] = await jobsOf(cancelled.id);
    expect(await job.getState()).toBe('completed');
  });

  test('exhausted retries: the job stays failed with the error; waitForReactors resolves when told to allow failures', async () => {
    const subscription = await createSubscription();

    const renamed = await dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'sub_x' }));
    await waitForReactors(es, { allowFailures: true });

    expect(runsOf(renamed.id).map((entry) => entry.attempt)).toEqual([1, 2]);
    const [job] = await jobsOf(renamed.id);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toBe('cannot rename to sub_x');
    expect(job.attemptsMade).toBe(2);
    expect(await es.pendingReactorJobs()).toBe(0);
  });

  test('es.close() closes worker, relay and queue, and can be called again', async () => {
    const second = await testDataSource('reactors_pg_backend_close', subscriptionEntities);
    const seen: string[] = [];
    const other = await EventSourcing.attach(second, {
      dispatcher: new Dispatcher().on(SubscriptionActivated, { async: (event) => void seen.push(event.stripeKey), name: 'close-confirm' }),
      queue: { backend: 'postgres', name: `${queueName}-close` },
    });
    const worker = other.worker();
    const subscription = new Subscription();
    await second.manager.save(SubscriptionCreated.build({ subscription, userId: 1 }));
    await second.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_close' }));
    await waitForReactors(other);
    expect(seen).toEqual(['sub_close']);

    await other.close();
    await other.close();

    expect(worker.isRunning()).toBe(false);
    await second.destroy();
  });
});
