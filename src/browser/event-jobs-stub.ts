// TEMPORARY stand-in for src/reactors/event-jobs.ts (being written on main): the same signature,
// found by scanning job ids for `<identity>.<position>.` while job keys are random. Deleted when
// the real one lands.
import type { JobState } from 'bullmq';
import type { EventSourcing } from '../event-sourcing';
import { IDENTITY_TABLE, libraryObject } from '../schema/event-sourcing-schema';

export type EventJobState = JobState | 'missing';

export interface EventJob {
  readonly reactor: string;
  readonly jobId: string;
  readonly state: EventJobState;
  readonly attemptsMade: number;
  readonly failedReason?: string;
  readonly processedOn?: Date;
  readonly finishedOn?: Date;
}

export interface EventJobsQuery {
  readonly table: string;
  readonly id: number | string;
  readonly position: number | string;
  readonly txId: number | string;
  readonly type: string;
}

export async function jobsOfEvent(es: EventSourcing, event: EventJobsQuery): Promise<EventJob[]> {
  let queue;
  try {
    queue = es.queue;
  } catch {
    return [];
  }
  const [{ identity }]: { identity: string }[] = await es.dataSource.query(`SELECT id::text AS identity FROM ${libraryObject(es.dataSource.driver, IDENTITY_TABLE)}`);
  const prefix = `${identity}.${event.position}.`;
  const found: EventJob[] = [];
  for (const state of ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const) {
    for (const jobId of await queue.getRanges([state], 0, 999, true)) {
      if (!jobId.startsWith(prefix)) continue;
      const job = await queue.getJob(jobId);
      if (!job || (job.data as { table?: string }).table !== event.table) continue;
      found.push({
        reactor: job.name,
        jobId,
        state,
        attemptsMade: job.attemptsMade,
        ...(job.failedReason ? { failedReason: job.failedReason } : {}),
        ...(job.processedOn ? { processedOn: new Date(job.processedOn) } : {}),
        ...(job.finishedOn ? { finishedOn: new Date(job.finishedOn) } : {}),
      });
    }
  }
  return found.sort((a, b) => a.reactor.localeCompare(b.reactor));
}
