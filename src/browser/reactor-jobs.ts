import type { Job, Queue } from 'bullmq';
import type { DataSource } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import type { EventSourcing } from '../event-sourcing';
import { isReactorJobData, type ReactorJobData } from '../reactors/reactor-queue';
import { IDENTITY_TABLE, libraryObject } from '../schema/event-sourcing-schema';
import { HttpError, notFound } from './http-error';

/** The reactor queue, or undefined when `es` was attached without one. */
export function queueOf(es: EventSourcing): Queue | undefined {
  try {
    return es.queue;
  } catch (error) {
    if (error instanceof EventSourcingConfigError) return undefined;
    throw error;
  }
}

/** A failed reactor job of this database, with its data. */
export interface FailedReactorJob {
  readonly jobId: string;
  readonly data: ReactorJobData;
  readonly attemptsMade: number;
  readonly failedReason: string;
  readonly finishedOn: Date | undefined;
}

/**
 * The reactor jobs of this database and no other: a queue shared by name, or a database since
 * reset, holds jobs whose ids start with another identity. The identity is read once.
 */
export class OwnedJobs {
  readonly #dataSource: DataSource;
  #identity: Promise<string> | undefined;

  constructor(dataSource: DataSource) {
    this.#dataSource = dataSource;
  }

  async owns(job: Pick<Job, 'id' | 'data'>): Promise<boolean> {
    return job.id !== undefined && job.id.startsWith(`${await this.#identityOf()}.`) && isReactorJobData(job.data);
  }

  /** The most recently failed jobs of this database, at most `limit` read from the failed set. */
  async failed(queue: Queue, limit: number): Promise<{ jobs: FailedReactorJob[]; total: number }> {
    const [jobs, total] = await Promise.all([queue.getFailed(0, limit - 1), queue.getFailedCount()]);
    const owned: FailedReactorJob[] = [];
    for (const job of jobs) {
      if (!job || !(await this.owns(job))) continue;
      owned.push({
        jobId: job.id!,
        data: job.data as ReactorJobData,
        attemptsMade: job.attemptsMade,
        failedReason: job.failedReason ?? '',
        finishedOn: job.finishedOn ? new Date(job.finishedOn) : undefined,
      });
    }
    return { jobs: owned, total };
  }

  /**
   * A job of this database, by id.
   *
   * @throws HttpError 404 for a job that is not in the queue or not this database's.
   */
  async find(queue: Queue, jobId: string): Promise<Job<ReactorJobData>> {
    const job = (await queue.getJob(jobId)) as Job<ReactorJobData> | undefined;
    if (!job || !(await this.owns(job))) throw notFound(`Reactor job ${jobId}`);
    return job;
  }

  /**
   * Moves a failed job back to waiting, for another round of attempts.
   *
   * @throws HttpError 409 for a job that is not failed (any more).
   */
  async retry(job: Job<ReactorJobData>): Promise<void> {
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

  #identityOf(): Promise<string> {
    this.#identity ??= (async () => {
      const [row]: { identity: string }[] = await this.#dataSource.query(`SELECT id::text AS identity FROM ${libraryObject(this.#dataSource.driver, IDENTITY_TABLE)}`);
      return row.identity;
    })().catch((error: unknown) => {
      this.#identity = undefined;
      throw error;
    });
    return this.#identity;
  }
}
