import { EventSourcingError } from './event-sourcing-error';

/**
 * A projection's handler threw on an event. The batch it was in rolled back: nothing that batch's
 * handlers wrote stays, and the checkpoint did not move, so the same event is handled again on the
 * next try (never skipped). `es.projections.status()` shows it as the projection's `lastError`
 * until a batch succeeds. The handler's error is the `cause`.
 */
export class ProjectionError extends EventSourcingError {
  constructor(
    /** The projection's name. */
    readonly projection: string,
    /** The stored type of the event the handler failed on, e.g. `'Subscription.Activated'`. */
    readonly eventType: string,
    /** The event's id in its events table. */
    readonly eventId: number,
    /** The events table the event is in. */
    readonly table: string,
    /** The event's global position. */
    readonly position: number,
    /** The id of the transaction that wrote the event (the first half of a checkpoint). */
    readonly txId: number,
    cause: unknown,
  ) {
    super(
      'PROJECTION',
      `projection '${projection}' failed on ${eventType} ${eventId} (${table}, position ${position}): ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
