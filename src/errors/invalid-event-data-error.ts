import { EventSourcingError } from './event-sourcing-error';

/**
 * An event's data or metadata holds a value JSON cannot store faithfully (NaN, Infinity, an
 * invalid Date, a BigInt, a NUL character, a circular reference, a function, a Map...), or a
 * stored value does not match its declared `@Data` type. Nothing was written.
 */
export class InvalidEventDataError extends EventSourcingError {
  constructor(
    /** The event type, e.g. `'Subscription.Activated'`. */
    readonly eventType: string,
    /** The path of the offending value, e.g. `'stripeKey'` or `'metadata.tags[2]'`. */
    readonly attribute: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super('INVALID_EVENT_DATA', `${eventType}: ${attribute} ${reason}`);
  }
}
