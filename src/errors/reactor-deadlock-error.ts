import { EventSourcingError } from './event-sourcing-error';

/**
 * A trigger reactor wrote an event of an aggregate its own transaction has locked, through a
 * manager other than `ctx.manager` (`dataSource.manager`, say). That write would wait forever
 * for the lock its own transaction holds; it is refused instead, and the transaction rolls back.
 */
export class ReactorDeadlockError extends EventSourcingError {
  constructor(
    /** The trigger reactor's name. */
    readonly reactor: string,
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The locked aggregate's primary key. */
    readonly aggregateId: unknown,
  ) {
    super(
      'REACTOR_DEADLOCK',
      `trigger reactor ${reactor} wrote ${aggregateType} ${String(aggregateId)} outside the event's transaction, which holds that row's lock, so the write would wait forever: write through ctx.manager`,
    );
  }
}
