import { EventSourcingError } from './event-sourcing-error';

/**
 * A reactor threw. For a trigger reactor the whole transaction rolled back: the event, its
 * aggregate and anything the reactor wrote are gone. The original error is the `cause`.
 */
export class ReactorError extends EventSourcingError {
  constructor(
    /** The reactor's name. */
    readonly reactor: string,
    /** The event type it reacted to. */
    readonly eventType: string,
    /** The event's aggregate id. */
    readonly aggregateId: unknown,
    cause: unknown,
  ) {
    super(
      'REACTOR',
      `reactor ${reactor} failed on ${eventType} of aggregate ${String(aggregateId)}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
