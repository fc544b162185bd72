import { EventSourcingError } from './event-sourcing-error';

/**
 * An event of a type declared `@EventType(name, { retired: true })` was built or written. Old
 * rows of a retired type still load, for history and replay; new ones are refused.
 */
export class RetiredEventTypeError extends EventSourcingError {
  constructor(
    /** The stored type name. */
    readonly eventType: string,
    /** The event class. */
    readonly className: string,
  ) {
    super('RETIRED_EVENT_TYPE', `${eventType} (${className}) is retired: its old events still load, but no new ones are written`);
  }
}
