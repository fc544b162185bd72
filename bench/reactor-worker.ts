import 'reflect-metadata';
import { Worker } from 'bullmq';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { benchDispatcher, benchEntities, reactorProbe } from './models';
import { connectionOf } from './cases/raw-bullmq';
import { wallClock, type ToParent, type ToWorker } from './cases/worker-process';

/**
 * The reactors case's worker process: one es.worker() on the bench's queue and one plain BullMQ
 * Worker on the baseline's queue, both at concurrency 1 and a no-op each. A process of its own,
 * as workers are deployed: in the writers' process the writes' CPU would delay the worker and
 * the figure would be the event loop's, not the library's.
 */
const { BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_QUEUE, BENCH_RAW_QUEUE } = process.env as Record<string, string>;
const send = (message: ToParent) => process.send!(message);

async function main(): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url: BENCH_DATABASE_URL, entities: benchEntities });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: benchDispatcher,
    queue: { connection: BENCH_REDIS_URL, name: BENCH_QUEUE },
    onError: (error) => console.error('reactor worker process:', error),
  });
  const expected = { library: 0, raw: 0 };
  const counts = { library: 0, raw: 0 };
  let starts: [string, number][] = [];
  const called = (side: 'library' | 'raw', id?: string) => {
    const at = wallClock();
    if (id !== undefined) starts.push([id, at]);
    counts[side] += 1;
    if (counts[side] === expected[side]) send({ type: 'done', side, at });
  };
  reactorProbe.called = (event) => called('library', String(event.id));
  const worker = es.worker();
  // A failed job would never be counted: say why at once instead of timing out.
  worker.on('failed', (job, error) => send({ type: 'error', message: `job ${job?.id} failed: ${error.stack ?? error.message}` }));
  const raw = new Worker(BENCH_RAW_QUEUE, async () => called('raw'), { connection: { ...connectionOf(BENCH_REDIS_URL), maxRetriesPerRequest: null }, concurrency: 1 });
  await Promise.all([worker.waitUntilReady(), raw.waitUntilReady()]);

  process.on('message', (message: ToWorker) => {
    if (message.type === 'expect') {
      expected[message.side] = message.n;
      counts[message.side] = 0;
      starts = [];
      send({ type: 'expecting', side: message.side });
    } else if (message.type === 'starts') {
      send({ type: 'starts', starts });
      starts = [];
    } else if (message.type === 'close') {
      void (async () => {
        await Promise.allSettled([worker.close(), raw.close()]);
        await es.close();
        await dataSource.destroy();
        process.disconnect();
      })();
    }
  });
  // An orphan must not keep working the queue after the bench died.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

main().catch((error) => {
  send({ type: 'error', message: error instanceof Error ? error.stack ?? error.message : String(error) });
  process.exit(1);
});
