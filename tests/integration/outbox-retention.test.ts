import { activateNewSubscription } from '../support/activated-subscription';
import Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, EventSourcingError, type ReactorContext, type ReactorQueueOptions } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { obliterateQueue, PrivateRedis, waitFor } from '../support/processes';
import { SubscriptionActivated, subscriptionEntities } from '../support/subscription-model';

/**
 * Defect 11 of the hardening issue (the parts one process can show): an outbox row was deleted as
 * soon as its job was in Redis, so a job Redis then lost (a restart without persistence, a
 * failover, an eviction, a hand-made removal) was gone for good, and nothing said that Redis was
 * set up to lose jobs. With `keepOutboxUntil: 'completed'` the row stays until the job completes
 * and the relay adds lost jobs again; at attach, a Redis that may evict or forget jobs is reported
 * through onError (code REDIS_CONFIG).
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const run = `${process.pid}-${Date.now()}`;
const queueName = `defects-outbox-retention-${run}`;
const relay = { recheckAfter: 200, interval: 100 };

const runs: { eventId: number; jobId: string | undefined }[] = [];
function Confirm(event: SubscriptionActivated, ctx: ReactorContext) {
  runs.push({ eventId: event.id, jobId: ctx.job?.id });
}
const dispatcher = () => new Dispatcher().on(SubscriptionActivated, { async: Confirm });

let dataSource: DataSource;

beforeAll(async () => {
  dataSource = await testDataSource(`defects_outbox_retention_${process.pid}`, subscriptionEntities);
});

afterAll(async () => {
  await dataSource?.destroy();
  await obliterateQueue(queueName, redisUrl);
});

beforeEach(() => {
  runs.length = 0;
});

const activate = (stripeKey: string) => activateNewSubscription(dataSource, stripeKey);

interface OutboxState {
  eventId: number;
  enqueued: boolean;
}
async function outbox(): Promise<OutboxState[]> {
  return dataSource.query('SELECT event_id::int AS "eventId", enqueued_at IS NOT NULL AS enqueued FROM es_outbox ORDER BY id');
}

/** Waits until the after-commit hand-over has marked (or deleted) every outbox row. */
async function handedOver(): Promise<void> {
  await waitFor('the hand-over to the queue', async () => (await outbox()).every((row) => row.enqueued), 10_000, 20);
}

async function jobOf(es: EventSourcing, event: SubscriptionActivated) {
  const jobs = await es.queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed']);
  return jobs.find((job) => job.data.id === event.id);
}

describe("keepOutboxUntil: 'completed'", () => {
  let es: EventSourcing;

  beforeAll(async () => {
    es = await EventSourcing.attach(dataSource, {
      dispatcher: dispatcher(),
      queue: { connection: redisUrl, name: queueName, keepOutboxUntil: 'completed', relay },
    });
  });

  afterAll(async () => {
    await es?.close();
    await dataSource.query('DELETE FROM es_outbox');
  });

  test('the row stays, marked enqueued, while its job waits; it is deleted when the job completes', async () => {
    const event = await activate('sub_kept');
    await handedOver();

    expect(await outbox()).toEqual([{ eventId: event.id, enqueued: true }]);
    expect(await (await jobOf(es, event))!.getState()).toBe('waiting');
    // One piece of work, not two: the kept row and its waiting job are the same job.
    expect(await es.pendingReactorJobs()).toBe(1);

    const worker = es.worker();
    try {
      await waitForReactors(es);
    } finally {
      await worker.close();
    }
    expect(runs.map((entry) => entry.eventId)).toEqual([event.id]);
    expect(await outbox()).toEqual([]);
    expect(await (await jobOf(es, event))!.getState()).toBe('completed');
    expect(await es.pendingReactorJobs()).toBe(0);
  });

  test('a job removed from Redis while its row is kept is added again by the relay, and runs once', async () => {
    const event = await activate('sub_lost');
    await handedOver();
    const job = (await jobOf(es, event))!;
    await job.remove();
    expect(await es.queue.getJobState(job.id!)).toBe('unknown');

    const relayOnly = es.relay();
    try {
      // The same job again: same id, same signed data.
      const again = await waitFor('the relay to add the lost job again', async () => es.queue.getJob(job.id!), 10_000, 50);
      expect(again.data).toEqual(job.data);
    } finally {
      await relayOnly.close();
    }
    expect(await outbox()).toEqual([{ eventId: event.id, enqueued: true }]);

    const worker = es.worker();
    try {
      await waitForReactors(es);
    } finally {
      await worker.close();
    }
    expect(runs).toEqual([{ eventId: event.id, jobId: job.id }]);
    expect(await outbox()).toEqual([]);
    recordFigure('lost reactor jobs added again', 1);
  });

  test('a whole queue wiped (obliterate) is rebuilt from the kept rows: each job runs once', async () => {
    const events = [await activate('sub_wiped_1'), await activate('sub_wiped_2')];
    await handedOver();
    const ids = await Promise.all(events.map(async (event) => (await jobOf(es, event))!.id!));
    await es.queue.obliterate({ force: true });
    expect(await es.queue.getJobCounts('waiting')).toEqual({ waiting: 0 });

    const worker = es.worker();
    try {
      await waitFor('both jobs to run', async () => runs.length >= 2, 10_000, 50);
      await waitForReactors(es);
    } finally {
      await worker.close();
    }
    expect(runs.map((entry) => [entry.eventId, entry.jobId]).sort()).toEqual(events.map((event, index) => [event.id, ids[index]]).sort());
    expect(await outbox()).toEqual([]);
    recordFigure('lost reactor jobs added again', 2);
  });
});

// A control: the default is unchanged by the fix (it passes without the fix as well).
describe('by default, outbox rows are deleted once the job is in the queue', () => {
  test('no row remains beside a waiting job; the job runs once', async () => {
    const es = await EventSourcing.attach(dataSource, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: queueName, relay } });
    try {
      const event = await activate('sub_default');
      await waitFor('the hand-over to the queue', async () => (await outbox()).length === 0, 10_000, 20);
      expect(await (await jobOf(es, event))!.getState()).toBe('waiting');
      expect(await es.pendingReactorJobs()).toBe(1);
      const worker = es.worker();
      await waitForReactors(es);
      await worker.close();
      expect(runs.map((entry) => entry.eventId)).toEqual([event.id]);
    } finally {
      await es.close();
    }
  });
});

describe('a Redis that may lose jobs is reported at attach', () => {
  const evicting = "Redis maxmemory-policy is 'allkeys-lru': BullMQ needs 'noeviction', or Redis may evict queued reactor jobs under memory pressure";
  const forgetting =
    "Redis runs without the append-only file (appendonly no): jobs waiting in Redis are lost if it restarts; turn AOF on, or keep outbox rows until their jobs complete (queue.keepOutboxUntil: 'completed')";
  let redis: PrivateRedis;
  let admin: Redis;

  beforeAll(async () => {
    // BullMQ's own console warning about the eviction policy; the library's goes through onError.
    jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    redis = await PrivateRedis.create({ persistence: false });
    await redis.start();
    admin = new Redis(redis.url);
  });

  afterAll(async () => {
    admin?.disconnect();
    await redis?.dispose();
    jest.restoreAllMocks();
  });

  /** The REDIS_CONFIG warnings of one attach, once the first has arrived (they arrive together). */
  async function warningsOf(options: Partial<ReactorQueueOptions>, expectNone = false): Promise<string[]> {
    const errors: unknown[] = [];
    const es = await EventSourcing.attach(dataSource, {
      queue: { connection: redis.url, name: `${queueName}-config`, ...options },
      onError: (error) => errors.push(error),
    });
    try {
      const config = () => errors.filter((error) => error instanceof EventSourcingError && error.code === 'REDIS_CONFIG') as EventSourcingError[];
      if (expectNone) await new Promise((resolve) => setTimeout(resolve, 1000));
      else await waitFor('the Redis configuration warnings', async () => config().length > 0, 5000, 20);
      expect(errors.length).toBe(config().length);
      return config().map((error) => error.message);
    } finally {
      await es.close();
    }
  }

  test('an evicting policy and no append-only file: both warnings', async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await warningsOf({})).toEqual([evicting, forgetting]);
  });

  test("with keepOutboxUntil: 'completed' a Redis that forgets is acceptable: only the eviction warning", async () => {
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await warningsOf({ keepOutboxUntil: 'completed' })).toEqual([evicting]);
  });

  test('noeviction: only the append-only warning; with the AOF turned on as well: none', async () => {
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    expect(await warningsOf({})).toEqual([forgetting]);
    await admin.config('SET', 'appendonly', 'yes');
    expect(await warningsOf({}, true)).toEqual([]);
  });
});
