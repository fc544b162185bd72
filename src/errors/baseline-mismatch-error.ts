import { EventSourcingError } from './event-sourcing-error';

/** One column a baseline event does not reproduce. */
export interface BaselineColumnMismatch {
  /** The property name of the column. */
  column: string;
  /** The value in the row. */
  stored: unknown;
  /** The value replaying the baseline event gives. */
  replayed: unknown;
}

/**
 * The baseline event an aggregate declares does not give back its row when replayed: writing it
 * would make the next rebuild change the row. Nothing was written.
 */
export class BaselineMismatchError extends EventSourcingError {
  constructor(
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The aggregate's primary key. */
    readonly aggregateId: unknown,
    /** The baseline event's type. */
    readonly eventType: string,
    /** Each column that differs. */
    readonly columns: readonly BaselineColumnMismatch[],
    /** What to do about it, when known. */
    hint?: string,
  ) {
    super(
      'BASELINE_MISMATCH',
      `${aggregateType} ${String(aggregateId)}: its baseline ${eventType} does not reproduce the row: ${columns
        .map((mismatch) => `${mismatch.column} is ${show(mismatch.stored)} in the row but ${show(mismatch.replayed)} after replay`)
        .join('; ')}${hint ? `; ${hint}` : ''}`,
    );
  }
}

function show(value: unknown): string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  try {
    const json = JSON.stringify(value);
    return json === undefined ? String(value) : json.length > 60 ? `${json.slice(0, 60)}...` : json;
  } catch {
    return String(value);
  }
}
