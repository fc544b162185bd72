import { EventSourcingError } from './event-sourcing-error';

/** The aggregate row an event, a replay or a command refers to does not exist. */
export class AggregateNotFoundError extends EventSourcingError {
  constructor(
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The primary key looked for. */
    readonly aggregateId: unknown,
  ) {
    super('AGGREGATE_NOT_FOUND', `${aggregateType} ${String(aggregateId)} does not exist`);
  }
}
