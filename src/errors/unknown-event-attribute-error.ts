import { EventSourcingError } from './event-sourcing-error';

/** `Event.build(...)` was given an attribute the event class does not declare. */
export class UnknownEventAttributeError extends EventSourcingError {
  constructor(
    /** The event type. */
    readonly eventType: string,
    /** The attribute that is not declared with `@Data()`. */
    readonly attribute: string,
    /** The attributes the event accepts. */
    readonly accepted: readonly string[],
  ) {
    super(
      'UNKNOWN_EVENT_ATTRIBUTE',
      `${eventType}.build: unknown attribute '${attribute}' (accepted: ${accepted.join(', ')})`,
    );
  }
}
