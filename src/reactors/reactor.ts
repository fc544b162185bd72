import type { Job } from 'bullmq';
import type { EntityManager } from 'typeorm';
import type { AggregateEvent } from '../events/aggregate-event';

/** What a reactor is given besides the event. */
export interface ReactorContext {
  /**
   * For a trigger reactor, the manager of the event's own transaction: events it saves are
   * written atomically with the event. For an async reactor, the DataSource's manager.
   */
  manager: EntityManager;
  /** The reactor's stable name (its class or function name, or the `name` it was registered with). */
  reactor: string;
  /** `'trigger'` inside the transaction, `'async'` in a worker after commit. */
  mode: 'trigger' | 'async';
  /** 1 for the first run; more when BullMQ retries an async reactor. */
  attempt: number;
  /** The BullMQ job running an async reactor. */
  job?: Job;
}

/**
 * A reactor class: instantiated for every call (or by the dispatcher's `factory`), then `call`ed.
 *
 * @example
 * ```ts
 * export class SubscriptionConfirmation implements Reactor<SubscriptionActivated> {
 *   async call(event: SubscriptionActivated, ctx: ReactorContext) {
 *     await mailer.send({ to: event.aggregateId, template: 'confirmation', idempotencyKey: ctx.job?.id });
 *   }
 * }
 * ```
 */
export interface Reactor<E extends AggregateEvent = AggregateEvent> {
  /** Reacts to one event. A trigger's throw rolls the event back; an async reactor's throw retries the job. */
  call(event: E, context: ReactorContext): unknown;
}

/**
 * A reactor class, constructed without arguments unless the dispatcher has a `factory`; with a
 * factory its constructor may take dependencies.
 */
export type ReactorClass<E extends AggregateEvent = AggregateEvent> = new (...args: any[]) => Reactor<E>;

/** A plain function reactor; its name is the function's name unless registered with `name`. */
export type ReactorFunction<E extends AggregateEvent = AggregateEvent> = (event: E, context: ReactorContext) => unknown;

/** Anything the dispatcher accepts as a reactor. */
export type ReactorLike<E extends AggregateEvent = AggregateEvent> = ReactorClass<E> | ReactorFunction<E>;
