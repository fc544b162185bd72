import { EventSourcingError } from './event-sourcing-error';

/**
 * A TypeORM write outside the event path (`save`, `update`, `insert`, a QueryBuilder) changed
 * sourced columns or the version of an aggregate. Raised, with nothing written, under
 * `@Aggregate({ directWrites: 'reject' })`; reported through `onError` under `'warn'`.
 */
export class DirectWriteError extends EventSourcingError {
  constructor(
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The row's primary key, when the write names one (a QueryBuilder update does not). */
    readonly aggregateId: unknown,
    /** The TypeORM operation: `'insert'` or `'update'`. */
    readonly operation: 'insert' | 'update',
    /** The property names of the sourced columns (and version) it writes. */
    readonly columns: readonly string[],
  ) {
    super(
      'DIRECT_WRITE',
      `${aggregateType}${aggregateId === undefined || aggregateId === null ? '' : ` ${String(aggregateId)}`}: ${operation} outside the event path writes ${columns.join(', ')}, which events decide: write an event (or a command) instead, or list columns events do not decide in @Aggregate({ exclude })`,
    );
  }
}
