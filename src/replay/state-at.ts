import { LessThanOrEqual, type EntityManager, type ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { VersionOutOfRangeError } from '../errors/version-out-of-range-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { assertExists } from './history';
import { replayEvents } from './replay-events';

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
  const byVersion = 'version' in options;
  if (byVersion && (!Number.isInteger(options.version) || options.version < 0)) {
    const latest = await manager.count<AggregateEvent>(definition.eventsMetadata.target, { where: { aggregateId: id } });
    if (latest === 0) await assertExists(manager, definition, id);
    throw new VersionOutOfRangeError(definition.name, id, options.version, latest);
  }
  const events = await manager.find<AggregateEvent>(definition.eventsMetadata.target, {
    where: byVersion
      ? { aggregateId: id, version: LessThanOrEqual(options.version) }
      : { aggregateId: id, createdAt: LessThanOrEqual(options.at) },
    order: { version: 'ASC' },
  });
  if (events.length === 0) await assertExists(manager, definition, id);
  // Versions are contiguous from 1; a later version written earlier (clock skew between
  // writers) must not be replayed past a gap.
  let run = 0;
  while (run < events.length && events[run].version === run + 1) run += 1;
  const replayed = events.slice(0, run);
  if (byVersion && replayed.length < options.version) {
    throw new VersionOutOfRangeError(definition.name, id, options.version, replayed.length);
  }
  if (replayed.length === 0) return null;
  return replayEvents(manager, definition, id, replayed);
}
