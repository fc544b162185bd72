import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { EventSourcing } from '../event-sourcing';
import { UsageError } from '../errors/usage-error';
import { isReactorJobData } from '../reactors/reactor-queue';

/** The event a reactor job was added for, as its job data names it. */
export interface ReactorJobEvent {
  /** The events table, e.g. `'subscription_events'`. */
  readonly table: string;
  /** The event's row id in that table. */
  readonly id: number;
  /** The stored event type, e.g. `'Subscription.Activated'`. */
  readonly type: string;
  /** The event's global position. */
  readonly position: number;
  /** The async reactor the job runs. */
  readonly reactor: string;
}

/** Options of {@link bullBoardAdapter}. */
export interface BullBoardAdapterOptions {
  /**
   * The address of an event's page (the event browser's, or one of your own): bull-board links
   * each job to it.
   */
  eventUrl?: (event: ReactorJobEvent) => string;
  /**
   * Hides bull-board's actions (retry, promote, clean, add): a view only.
   * @defaultValue false
   */
  readOnly?: boolean;
  /**
   * The queue's description in bull-board.
   * @defaultValue 'Async reactors of typeorm-event-sourcing'
   */
  description?: string;
}

/** The event fields of a job's data, or undefined for data that is not a reactor job's. */
function eventOf(data: unknown): ReactorJobEvent | undefined {
  if (!isReactorJobData(data)) return undefined;
  const { table, id, type, position, reactor } = data;
  return { table, id, type, position, reactor };
}

/**
 * The async reactors' queue as a bull-board queue (optional peer `@bull-board/api`): each job
 * named `Reactor <- Event.Type` and, with `eventUrl`, linked to its event's page. Pass it to
 * bull-board's `createBullBoard({ queues: [...] })` (or `BullBoardModule.forFeature` in NestJS).
 *
 * @example
 * ```ts
 * import { createBullBoard } from '@bull-board/api';
 * import { ExpressAdapter } from '@bull-board/express';
 * import { bullBoardAdapter } from 'typeorm-event-sourcing/bull-board';
 *
 * const serverAdapter = new ExpressAdapter().setBasePath('/queues');
 * createBullBoard({ queues: [bullBoardAdapter(es, { eventUrl: (event) => `/events/${event.table}/${event.id}` })], serverAdapter });
 * app.use('/queues', requireOperator, serverAdapter.getRouter());
 * ```
 * @throws EventSourcingConfigError when `es` has no queue.
 */
export function bullBoardAdapter(es: EventSourcing, options: BullBoardAdapterOptions = {}): BullMQAdapter {
  const { eventUrl } = options;
  if (eventUrl !== undefined && typeof eventUrl !== 'function') throw new UsageError('bullBoardAdapter', 'eventUrl', `must be a function, got ${typeof eventUrl}`);
  const adapter = new BullMQAdapter(es.queue, {
    readOnlyMode: options.readOnly ?? false,
    description: options.description ?? 'Async reactors of typeorm-event-sourcing',
    externalJobUrl: eventUrl
      ? (job) => {
          const event = eventOf(job.data);
          return event ? { href: eventUrl(event), displayText: `${event.type} ${event.table}/${event.id}` } : { href: '' };
        }
      : undefined,
  });
  adapter.setFormatter('name', (job: { name?: string; data?: unknown }) => {
    const event = eventOf(job.data);
    return event ? `${event.reactor} <- ${event.type}` : (job.name ?? '');
  });
  return adapter;
}
