import type { Queue } from 'bullmq';
import type { EventSourcing } from '../event-sourcing';
import { isEventSourcingError } from './errors';

/** The BullMQ queue of the async reactors, or undefined when the instance was attached without one. */
export function queueOf(es: EventSourcing): Queue | undefined {
  try {
    return es.queue;
  } catch (error) {
    // es.queue raises EventSourcingConfigError when no queue is configured; anything else is news.
    if (isEventSourcingError(error) && error.code === 'CONFIG') return undefined;
    throw error;
  }
}

/** Every state a job can be in, in the order a job goes through them. */
export const JOB_STATES = ['waiting', 'prioritized', 'waiting-children', 'delayed', 'active', 'completed', 'failed'] as const;
