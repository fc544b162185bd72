import { EventSourcingError } from './event-sourcing-error';

/**
 * An event could not be written because the aggregate moved on: its version is not the one the
 * caller expected, or PostgreSQL aborted the transaction with a serialization failure or a
 * deadlock (or, once after a migration changed a table, because the library's prepared statement
 * for it went stale inside a transaction).
 *
 * Nothing was written. `retryable` is true when running the same work again (after reloading the
 * aggregate) may succeed: always for serialization failures and deadlocks, never for an explicit
 * expected version, whose caller decided what it expected.
 */
export class ConcurrencyError extends EventSourcingError {
  constructor(
    /** The aggregate's class name, e.g. `'Subscription'`. */
    readonly aggregateType: string,
    /** The aggregate's primary key; `undefined` for an event that would create its aggregate. */
    readonly aggregateId: unknown,
    /** The version the caller expected, or `undefined` for a database-detected conflict. */
    readonly expectedVersion: number | undefined,
    /** The version found under the lock, or `undefined` for a database-detected conflict. */
    readonly actualVersion: number | undefined,
    /** Whether retrying the same work may succeed. */
    readonly retryable: boolean,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(
      'CONCURRENCY',
      expectedVersion !== undefined
        ? `${aggregateType} ${aggregateId === undefined ? '(new)' : String(aggregateId)}: expected version ${expectedVersion}, but it is at version ${actualVersion}`
        : `${aggregateType} ${String(aggregateId)}: concurrent transaction conflict (${options?.detail ?? 'retry the transaction'})`,
      options,
    );
  }
}
