import { randomUUID } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';

export function connectionOf(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
  };
}

/**
 * The producing side of the reactors case's baseline: plain BullMQ on a queue of its own, jobs
 * with the options and about the data size the library gives its reactor jobs, so that Redis
 * does the same work per job. The consuming side is in reactor-worker.ts.
 */
export class RawProducer {
  readonly queue: Queue;

  constructor(redisUrl: string, name: string) {
    this.queue = new Queue(name, { connection: connectionOf(redisUrl) });
  }

  /** Adds n jobs from `writers` concurrent producers, each adding one job at a time. */
  async add(n: number, writers: number): Promise<void> {
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let j = w; j < n; j += writers) {
          const data = { table: 'bench_item_events', id: j + 1, type: 'BenchItem.Pinged', reactor: 'bench-probe', position: j + 1, key: randomUUID(), signature: 'f'.repeat(64) };
          await this.queue.add('bench-probe', data, { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 86_400 }, removeOnFail: false });
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.queue.obliterate({ force: true }).catch(() => undefined);
    await this.queue.close();
  }
}
