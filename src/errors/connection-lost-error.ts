import { EventSourcingError } from './event-sourcing-error';

/**
 * The database connection broke while an event was being written (a failover, a restart,
 * `pg_terminate_backend`). The transaction did not commit, or its COMMIT got no answer; the
 * caller's aggregate instance and event were put back as they were before the write. Retrying
 * with a fresh read is safe: if the COMMIT did happen, the retry meets the new version.
 */
export class ConnectionLostError extends EventSourcingError {
  /** Always true: running the same work again on a new connection may succeed. */
  readonly retryable = true;

  constructor(
    /** The aggregate's class name, e.g. `'Subscription'`. */
    readonly aggregateType: string,
    /** The aggregate's primary key; `undefined` for an event that would create its aggregate. */
    readonly aggregateId: unknown,
    cause: unknown,
  ) {
    super(
      'CONNECTION_LOST',
      `${aggregateType} ${aggregateId === undefined || aggregateId === null ? '(new)' : String(aggregateId)}: the database connection was lost during the write (${
        cause instanceof Error ? cause.message : String(cause)
      }); the write did not complete, retry it`,
      { cause },
    );
  }
}
