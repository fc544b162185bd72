import { EventSourcingError } from './event-sourcing-error';

/** `stateAt(..., { version })` asked for a version the aggregate has not reached. */
export class VersionOutOfRangeError extends EventSourcingError {
  constructor(
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The aggregate's primary key. */
    readonly aggregateId: unknown,
    /** The version asked for. */
    readonly requestedVersion: number,
    /** The latest stored version. */
    readonly latestVersion: number,
  ) {
    super(
      'VERSION_OUT_OF_RANGE',
      `${aggregateType} ${String(aggregateId)} has no version ${requestedVersion} (latest is ${latestVersion})`,
    );
  }
}
