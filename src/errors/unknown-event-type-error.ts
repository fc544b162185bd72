import { EventSourcingError } from './event-sourcing-error';

/**
 * A stored event row has a `type` that no loaded `@EventType` class claims. TypeORM would load
 * it silently as the abstract base class; this library refuses instead.
 */
export class UnknownEventTypeError extends EventSourcingError {
  constructor(
    /** The events table, e.g. `'subscription_events'`. */
    readonly table: string,
    /** The event row's id. */
    readonly eventId: unknown,
    /** The stored type name. */
    readonly eventType: string,
  ) {
    super(
      'UNKNOWN_EVENT_TYPE',
      `${table} row ${String(eventId)} has type '${eventType}', which no @EventType class registers`,
    );
  }
}
