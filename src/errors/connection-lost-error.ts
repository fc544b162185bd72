import { EventSourcingError } from './event-sourcing-error';

/**
 * The database connection broke while an event was being written (a failover, a restart,
 * `pg_terminate_backend`). The caller's aggregate instance and event were put back as they were
 * before the write. Usually nothing was committed; when the connection broke during COMMIT
 * (`inDoubt`), the write may have committed all the same. Retrying is safe with an expected
 * version (commands use one): if the write did happen, the retry meets the newer version.
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
    /** Whether the connection broke during COMMIT, so that the write may have committed. */
    readonly inDoubt = false,
  ) {
    super(
      'CONNECTION_LOST',
      `${aggregateType} ${aggregateId === undefined || aggregateId === null ? '(new)' : String(aggregateId)}: the database connection was lost during the write (${
        cause instanceof Error ? cause.message : String(cause)
      }); ${
        inDoubt
          ? 'it broke during COMMIT, so the write may have committed: read the aggregate again, or retry with an expected version'
          : 'nothing was committed, retry it'
      }`,
      { cause },
    );
  }
}
