import type { JobState } from 'bullmq';
import { attachedTo, type EventSourcing } from '../event-sourcing';
import type { AggregateEvent } from '../events/aggregate-event';
import { jobKeyOf } from './outbox';

/** Where a job is in BullMQ, or `'missing'` when the queue has no job under its id. */
export type EventJobState = JobState | 'missing';

/** One async reactor job an event caused, as the queue sees it now. */
export interface EventJob {
  /** The async reactor the job runs. */
  readonly reactor: string;
  /** The job's id in the reactor queue. */
  readonly jobId: string;
  /**
   * `'missing'` when the queue does not hold the job: not handed over yet (still in the outbox),
   * completed longer ago than `keepCompletedFor`, removed, or written before job ids could be
   * computed from the event (version 0.1 of the library).
   */
  readonly state: EventJobState;
  /** Attempts made so far. */
  readonly attemptsMade: number;
  /** Why the last attempt failed. */
  readonly failedReason?: string;
  /** When the last attempt started. */
  readonly processedOn?: Date;
  /** When the job completed or failed for good. */
  readonly finishedOn?: Date;
}

/** An event row as the job lookup needs it. */
export interface EventJobsQuery {
  /** Its events table. */
  readonly table: string;
  /** Its row id. */
  readonly id: number | string;
  /** Its global position. */
  readonly position: number | string;
  /** The id of the transaction that wrote it (column `tx_id`). */
  readonly txId: number | string;
  /** Its stored type. */
  readonly type: string;
}

/**
 * The async reactor jobs an event caused and their state in the queue, found by id: the
 * dispatcher names the event's async reactors, and each job id is computed from the event row.
 * Empty without a queue, for a table or type this instance does not know, or for an event with
 * no async reactor.
 */
export async function jobsOfEvent(es: EventSourcing, event: EventJobsQuery): Promise<EventJob[]> {
  const { internals } = attachedTo(es.dataSource.manager);
  const queue = internals.reactors.configuredQueue;
  const definition = internals.registry.forEventsTable(event.table);
  const eventClass = definition?.eventsMetadata.childEntityMetadatas.find((child) => child.discriminatorValue === event.type)?.target;
  if (!queue || typeof eventClass !== 'function') return [];
  const reactors = internals.reactors.reactions.asyncReactorNames(Object.create(eventClass.prototype) as AggregateEvent);
  return Promise.all(
    reactors.map(async (reactor): Promise<EventJob> => {
      const jobId = queue.jobId({ position: Number(event.position), reactor, jobKey: jobKeyOf(event, reactor) });
      const job = await queue.queue.getJob(jobId);
      if (!job) return { reactor, jobId, state: 'missing', attemptsMade: 0 };
      const state = (await job.getState()) as EventJobState | 'unknown';
      return {
        reactor,
        jobId,
        state: state === 'unknown' ? 'missing' : state,
        attemptsMade: job.attemptsMade,
        ...(job.failedReason ? { failedReason: job.failedReason } : {}),
        ...(job.processedOn ? { processedOn: new Date(job.processedOn) } : {}),
        ...(job.finishedOn ? { finishedOn: new Date(job.finishedOn) } : {}),
      };
    }),
  );
}
