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

/** Options or attributes given as `null` (or any non-object) are a usage mistake to name, not a TypeError. */
export function assertObjectArgument(subject: string, argument: string, value: unknown, reason = 'must be an object'): asserts value is object {
  if (value === null || typeof value !== 'object') throw new UsageError(subject, argument, reason);
}
