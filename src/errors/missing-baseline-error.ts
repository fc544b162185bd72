import { EventSourcingError } from './event-sourcing-error';

/**
 * An aggregate row has no history to replay it from: it holds data from before its model was
 * sourced (version 0, no events) and its aggregate declares no baseline, or its history does not
 * begin with an event that creates it. Nothing was written; the row is as it was.
 */
export class MissingBaselineError extends EventSourcingError {
  constructor(
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The aggregate's primary key; undefined when the error is about many rows. */
    readonly aggregateId: unknown,
    /** What is missing, and what to do. */
    readonly reason: string,
  ) {
    super('MISSING_BASELINE', `${aggregateType}${aggregateId === undefined ? '' : ` ${String(aggregateId)}`}: ${reason}`);
  }
}
