import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { cloneValue } from '../aggregates/column-values';
import type { AggregateEvent } from '../events/aggregate-event';
import { DEFAULT_EVENT_BATCH_SIZE, EventReader } from './event-reader';
import { assertReplayable, replayEvent, replayStart } from './replay-events';

/** The sourced columns' values at one moment, deep copies. */
export type SourcedState = ReadonlyMap<ColumnMetadata, unknown>;

/** One event of a trail and the state it left. */
export interface TrailStep {
  readonly event: AggregateEvent;
  /** The sourced columns after this event. */
  readonly after: SourcedState;
  /** The sourced columns this event changed, with the value before it. */
  readonly changed: readonly { column: ColumnMetadata; before: unknown; after: unknown }[];
}

const LAST_VERSION = { version: 2 ** 31 - 1 };

function sourcedState(definition: AggregateDefinition, aggregate: ObjectLiteral): Map<ColumnMetadata, unknown> {
  return new Map(definition.sourcedColumns.map((column) => [column, cloneValue(column.getEntityValue(aggregate))]));
}

/**
 * Every state of an aggregate, event by event, in one pass over its history: the replay
 * `stateAt` does (a fresh entity with the database's defaults, then each event's `apply` with its
 * stored `createdAt`), with the sourced columns copied after each event and compared with the
 * copy before it. `stateAt({ version: n })` equals step n's `after`, at the cost of one replay
 * for the whole history instead of one per version.
 *
 * @throws MissingBaselineError when the history does not begin with an event that creates the
 * aggregate (no state can be replayed from a fresh entity).
 * @throws EventApplyError when an `apply` throws during the replay.
 */
export async function* stateTrail(manager: EntityManager, definition: AggregateDefinition, id: unknown): AsyncGenerator<TrailStep> {
  let aggregate: ObjectLiteral | undefined;
  let before: Map<ColumnMetadata, unknown> | undefined;
  for await (const events of EventReader.of(definition).historyOf(manager, id, LAST_VERSION, DEFAULT_EVENT_BATCH_SIZE)) {
    for (const event of events) {
      if (!aggregate) {
        assertReplayable(definition, id, event);
        aggregate = await replayStart(manager, definition, id);
        before = sourcedState(definition, aggregate);
      }
      aggregate = replayEvent(definition, aggregate, id, event);
      const after = sourcedState(definition, aggregate);
      const changed = definition.sourcedColumns
        .filter((column) => !definition.sameColumnValue(column, before!.get(column), after.get(column)))
        .map((column) => ({ column, before: before!.get(column), after: after.get(column) }));
      yield { event, after, changed };
      before = after;
    }
  }
}
