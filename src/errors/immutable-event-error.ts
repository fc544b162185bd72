import { EventSourcingError } from './event-sourcing-error';

/** Stored events are facts: updating or removing one through TypeORM is refused. */
export class ImmutableEventError extends EventSourcingError {
  constructor(
    /** The events table. */
    readonly table: string,
    /** `'update'` or `'remove'`. */
    readonly operation: 'update' | 'remove',
    /** The event row's id, when TypeORM knows it. */
    readonly eventId?: unknown,
  ) {
    super(
      'IMMUTABLE_EVENT',
      `${table}${eventId === undefined ? '' : ` row ${String(eventId)}`}: events are append-only, ${operation} refused`,
    );
  }
}
