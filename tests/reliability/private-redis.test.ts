import type { Queue } from 'bullmq';
import Redis from 'ioredis';
import { inspectQueue, PrivateRedis } from '../support/processes';

const redises: PrivateRedis[] = [];
const queues: Queue[] = [];

async function started(persistence: boolean): Promise<PrivateRedis> {
  const redis = await PrivateRedis.create({ persistence });
  redises.push(redis);
  await redis.start();
  return redis;
}

function queueOn(redis: PrivateRedis): Queue {
  const queue = inspectQueue('private-redis', redis.url);
  queues.push(queue);
  return queue;
}

/** Adds a waiting job, then stops and starts the server with the queue's connection closed. */
async function jobAcrossRestart(redis: PrivateRedis): Promise<{ id: string; after: Queue }> {
  const before = queueOn(redis);
  const job = await before.add('deliver', { eventId: 42 }, { jobId: 'event-42' });
  expect(await before.getJobCounts('waiting')).toEqual({ waiting: 1 });
  await before.close();
  await redis.stop();
  await redis.start();
  return { id: job.id!, after: queueOn(redis) };
}

afterAll(async () => {
  await Promise.all(queues.map((queue) => queue.close().catch(() => undefined)));
  await Promise.all(redises.map((redis) => redis.dispose()));
});

test('with persistence (the default), a waiting BullMQ job survives a stop and start', async () => {
  const redis = await started(true);
  const { id, after } = await jobAcrossRestart(redis);

  const job = await after.getJob(id);
  expect(job?.data).toEqual({ eventId: 42 });
  expect(await job?.getState()).toBe('waiting');
  expect(await after.getJobCounts('waiting')).toEqual({ waiting: 1 });
});

test('without persistence, a restart loses the job', async () => {
  const redis = await started(false);
  const { id, after } = await jobAcrossRestart(redis);

  expect(await after.getJob(id)).toBeUndefined();
  expect(await after.getJobCounts('waiting')).toEqual({ waiting: 0 });
});

test.each([true, false])('persistence %s: no eviction, as BullMQ requires; the AOF only with persistence', async (persistence) => {
  const redis = await started(persistence);
  const client = new Redis(redis.url);
  try {
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', persistence ? 'yes' : 'no']);
    expect(await client.config('GET', 'save')).toEqual(['save', '']);
  } finally {
    client.disconnect();
  }
});
