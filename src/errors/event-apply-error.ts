import { EventSourcingError } from './event-sourcing-error';

/**
 * An event's `apply` threw. Neither the event nor the aggregate was written, and the caller's
 * aggregate instance is unchanged. The original error is the `cause`.
 */
export class EventApplyError extends EventSourcingError {
  constructor(
    /** The stored event type, e.g. `'Subscription.Activated'`. */
    readonly eventType: string,
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The aggregate's primary key, or `undefined` for an event that creates its aggregate. */
    readonly aggregateId: unknown,
    cause: unknown,
  ) {
    super(
      'EVENT_APPLY',
      `${eventType}.apply failed on ${aggregateType} ${aggregateId === undefined ? '(new)' : String(aggregateId)}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}
