import { EventSourcingError } from './event-sourcing-error';

/** An `@EventType` upcaster threw, or returned something other than a data object. */
export class EventUpcastError extends EventSourcingError {
  constructor(
    /** The stored type name. */
    readonly eventType: string,
    /** The event row's id, when the read knows it. */
    readonly eventId: unknown,
    /** The version the failing step reads (`upcast[fromVersion]`). */
    readonly fromVersion: number,
    reason: string,
    options?: { cause?: unknown },
  ) {
    const row = eventId === undefined || eventId === null ? 'an event' : `event ${String(eventId)}`;
    super('EVENT_UPCAST', `${eventType} ${row}: upcast[${fromVersion}] (version ${fromVersion} to ${fromVersion + 1}) ${reason}`, options);
  }
}
