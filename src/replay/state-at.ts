import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import { VersionOutOfRangeError } from '../errors/version-out-of-range-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { DEFAULT_EVENT_BATCH_SIZE, EventReader } from './event-reader';
import { assertExists } from './history';
import { assertReplayable, replayEvent, replayStart } from './replay-events';

/** Which moment of an aggregate's life `stateAt` shows: after a version, or at a point in time. */
export type StateAtOptions =
  | {
      /** Replay versions 1 to this one. */
      version: number;
    }
  | {
      /** Replay the events written at or before this moment. */
      at: Date;
    };

/**
 * The aggregate as it was: replayed from a fresh entity up to a version, or through the longest
 * run of versions written at or before `at`. `null` when that moment precedes its first event.
 */
export async function stateAt(
  manager: EntityManager,
  definition: AggregateDefinition,
  id: unknown,
  options: StateAtOptions,
): Promise<ObjectLiteral | null> {
  const subject = `stateAt(${definition.name})`;
  assertAggregateId(definition, subject, id);
  const moment = momentOf(subject, options);
  let replayed: ObjectLiteral | null = null;
  let first: AggregateEvent | undefined;
  let replayable = false;
  let version = 0;
  // Versions are contiguous from 1; a later version written earlier (clock skew between
  // writers) must not be replayed past a gap.
  reading: for await (const events of EventReader.of(definition).historyOf(manager, id, moment, DEFAULT_EVENT_BATCH_SIZE)) {
    for (const event of events) {
      if (event.version !== version + 1) break reading;
      if (!first) {
        first = event;
        replayable = createsAggregate(event);
      }
      // A history that cannot be replayed is still counted: a version out of range is the error
      // to report first.
      if (replayable) replayed = replayEvent(definition, replayed ?? (await replayStart(manager, definition, id)), id, event);
      version = event.version;
    }
  }
  if (version === 0) await assertExists(manager, definition, id);
  if ('version' in moment && version < moment.version) {
    throw new VersionOutOfRangeError(definition.name, id, moment.version, version);
  }
  if (version === 0) return null;
  assertReplayable(definition, id, first);
  return replayed;
}

function createsAggregate(event: AggregateEvent): boolean {
  return getMetadataStorage().eventTypeOf(event.constructor)?.creates === true;
}

/** The earliest instant PostgreSQL's timestamptz holds (4713 BC); JavaScript's Date reaches further back. */
const EARLIEST_TIMESTAMP = Date.UTC(-4712, 0, 1);
const MAX_VERSION = 2 ** 31 - 1;

/** Exactly one of `version` (a positive integer the int column can hold) and `at` (a valid Date in range). */
function momentOf(subject: string, options: unknown): { version: number } | { at: Date } {
  assertObjectArgument(subject, 'options', options, 'must be { version } or { at }');
  const hasVersion = 'version' in options && (options as { version?: unknown }).version !== undefined;
  const hasAt = 'at' in options && (options as { at?: unknown }).at !== undefined;
  if (hasVersion === hasAt) throw new UsageError(subject, 'options', `must give exactly one of version and at, got ${hasVersion ? 'both' : 'neither'}`);
  if (hasVersion) {
    const version = (options as { version: unknown }).version;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
      const shown = typeof version === 'string' ? `'${version}'` : String(version);
      throw new UsageError(subject, 'version', `must be an integer from 1 to ${MAX_VERSION}, got ${shown} (${typeof version})`);
    }
    return { version };
  }
  const at = (options as { at: unknown }).at;
  if (Object.prototype.toString.call(at) !== '[object Date]') throw new UsageError(subject, 'at', `must be a Date, got ${typeof at}`);
  const time = (at as Date).getTime();
  if (Number.isNaN(time)) throw new UsageError(subject, 'at', 'is an invalid Date');
  if (time < EARLIEST_TIMESTAMP) throw new UsageError(subject, 'at', `is before 4713 BC, the earliest time PostgreSQL stores (${(at as Date).toISOString()})`);
  return { at: at as Date };
}
