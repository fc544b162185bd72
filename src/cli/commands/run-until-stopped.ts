import type { Job } from 'bullmq';
import type { ReactorJobData } from '../../reactors/reactor-queue';
import type { CommandRun } from '../command-run';

/**
 * Resolves on SIGTERM or SIGINT (or when the caller's AbortSignal aborts), then removes its
 * handlers: a process that mounted the commands keeps its own signal handling afterwards.
 */
function untilStopped(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const stop = (reason: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      signal?.removeEventListener('abort', onAbort);
      resolve(reason);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    const onAbort = () => stop('abort');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
    if (signal?.aborted) stop('abort');
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `worker [--concurrency <n>]`: runs the async reactors (with an outbox relay beside them) until
 * SIGTERM or SIGINT, then closes: running jobs finish first, bounded by `queue.closeTimeout`.
 * One line per finished job on stdout.
 */
export async function worker(run: CommandRun, options: { concurrency?: number }): Promise<number> {
  const queue = await run.reachQueue();
  // A relay of its own, closed with the worker, rather than the one es.worker() would start and
  // only es.close() stops: a process that mounted the commands keeps its instance open.
  const worker = run.es.worker({ ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}), relay: false });
  const relay = run.es.relay();
  const report = (outcome: 'completed' | 'failed', job: Job<ReactorJobData> | undefined, error?: Error) => {
    if (!job) return;
    const event = `${job.data.table}/${job.data.id}`;
    if (run.json) run.print(JSON.stringify({ outcome, reactor: job.name, event, type: job.data.type, jobId: job.id, attemptsMade: job.attemptsMade, ...(error ? { error: error.message } : {}) }));
    else run.print(`${outcome} ${job.name} for ${event} (${job.data.type})${error ? `: ${error.message.replace(/\s*\n\s*/g, ' ')}` : ''}`);
  };
  worker.on('completed', (job) => report('completed', job));
  worker.on('failed', (job, error) => report('failed', job, error));
  run.status(`worker on queue ${queue?.name}, concurrency ${options.concurrency ?? 1}, with an outbox relay: SIGTERM or SIGINT stops it`);
  const reason = await untilStopped(run.signal);
  run.status(`${reason}: letting running jobs finish, then closing`);
  await Promise.all([worker.close(), relay.close()]);
  run.status('worker closed');
  return 0;
}

/** `relay`: hands outbox rows left behind (a crash after COMMIT, Redis away) to the queue, until SIGTERM or SIGINT. */
export async function relay(run: CommandRun): Promise<number> {
  const queue = await run.reachQueue();
  const relay = run.es.relay();
  run.status(`outbox relay for queue ${queue?.name}: SIGTERM or SIGINT stops it`);
  const reason = await untilStopped(run.signal);
  run.status(`${reason}: closing`);
  await relay.close();
  run.status('relay closed');
  return 0;
}
