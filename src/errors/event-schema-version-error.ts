import { EventSourcingError } from './event-sourcing-error';

/**
 * A stored event's `schema_version` is one this code cannot read: newer than its `@EventType`
 * version (a rolling deploy where old code meets rows written by new code), or not a positive
 * integer. Deploy the code that knows the version everywhere before writing it, or read the row
 * with that code.
 */
export class EventSchemaVersionError extends EventSourcingError {
  constructor(
    /** The stored type name. */
    readonly eventType: string,
    /** The event row's id, when the read knows it. */
    readonly eventId: unknown,
    /** The row's `schema_version`. */
    readonly storedVersion: unknown,
    /** The newest version the event class knows. */
    readonly knownVersion: number,
  ) {
    const row = eventId === undefined || eventId === null ? 'an event' : `event ${String(eventId)}`;
    super(
      'EVENT_SCHEMA_VERSION',
      typeof storedVersion === 'number' && Number.isSafeInteger(storedVersion) && storedVersion > knownVersion
        ? `${eventType} ${row} is stored with schema version ${storedVersion}, but this code knows versions up to ${knownVersion}: deploy the code that writes version ${storedVersion} before reading its rows`
        : `${eventType} ${row} has schema version ${JSON.stringify(storedVersion) ?? String(storedVersion)}, which is not a version from 1 to ${knownVersion}`,
    );
  }
}
