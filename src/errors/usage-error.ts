import { EventSourcingError } from './event-sourcing-error';

/**
 * The library was called with an argument it cannot use: an id of the wrong type for the
 * aggregate's primary key, an expected version that is not a non-negative integer, `stateAt`
 * options that name no moment, an event that was not made by `build`. Nothing was read or written.
 */
export class UsageError extends EventSourcingError {
  constructor(
    /** What was called, e.g. `'es.history(Subscription)'` or `'Subscription.Activated'`. */
    readonly subject: string,
    /** The argument at fault, e.g. `'id'` or `'expectedVersion'`. */
    readonly argument: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super('USAGE', `${subject}: ${argument} ${reason}`);
  }
}
