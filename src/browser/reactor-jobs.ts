import type { Job } from 'bullmq';
import { isReactorJobData, type ReactorJobData, type ReactorQueue } from '../reactors/reactor-queue';
import { HttpError, notFound } from './http-error';

/** A failed reactor job of this database, with its data. */
export interface FailedReactorJob {
  readonly jobId: string;
  readonly data: ReactorJobData;
  readonly attemptsMade: number;
  readonly failedReason: string;
  readonly finishedOn: Date | undefined;
}

/**
 * Whether a job is a reactor job of this database: a queue shared by name, or a database since
 * reset, holds jobs whose ids start with another database's identity.
 */
function owned(queue: ReactorQueue, job: Pick<Job, 'id' | 'data'>): job is Job<ReactorJobData> {
  return queue.ownsJob(job.id) && isReactorJobData(job.data);
}

/** The most recently failed jobs of this database, at most `limit` read from the failed set, and the set's size. */
export async function failedJobs(queue: ReactorQueue, limit: number): Promise<{ jobs: FailedReactorJob[]; total: number }> {
  const [jobs, total] = await Promise.all([queue.queue.getFailed(0, limit - 1), queue.queue.getFailedCount()]);
  return {
    jobs: jobs
      .filter((job) => job && owned(queue, job))
      .map((job) => ({
        jobId: job.id!,
        data: job.data as ReactorJobData,
        attemptsMade: job.attemptsMade,
        failedReason: job.failedReason ?? '',
        finishedOn: job.finishedOn ? new Date(job.finishedOn) : undefined,
      })),
    total,
  };
}

/**
 * A job of this database, by id.
 *
 * @throws HttpError 404 for a job that is not in the queue or not this database's.
 */
export async function ownedJob(queue: ReactorQueue | undefined, jobId: string): Promise<Job<ReactorJobData>> {
  const job = await queue?.queue.getJob(jobId);
  if (!queue || !job || !owned(queue, job)) throw notFound(`Reactor job ${jobId}`);
  return job;
}

/**
 * Moves a failed job back to waiting, for another round of attempts.
 *
 * @throws HttpError 409 for a job that is not failed (any more).
 */
export async function retryFailedJob(job: Job<ReactorJobData>): Promise<void> {
  const notFailed = (state: string) => new HttpError(409, `Reactor job ${job.id} is ${state}: only a failed job can be retried`);
  const state = await job.getState();
  if (state !== 'failed') throw notFailed(state);
  try {
    await job.retry('failed');
  } catch (error) {
    // A worker or another operator got there first.
    const now = await job.getState();
    if (now !== 'failed') throw notFailed(now);
    throw error;
  }
}
