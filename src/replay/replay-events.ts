import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import type { AggregateEvent } from '../events/aggregate-event';
import { applyEvent } from '../events/write-path';
import { MissingBaselineError } from '../errors/missing-baseline-error';
import { getMetadataStorage } from '../metadata/metadata-storage';

/**
 * Refuses to replay a history that does not begin with an event that creates the aggregate (a
 * `{ creates: true }` type, which baselines are): its first event was written onto a row that held
 * data the events do not have, so a replay from an empty row would lose that data.
 */
export function assertReplayable(definition: AggregateDefinition, id: unknown, first: AggregateEvent | undefined): void {
  if (!first || getMetadataStorage().eventTypeOf(first.constructor)?.creates) return;
  throw new MissingBaselineError(
    definition.name,
    id,
    `its history begins with ${first.type} (version ${first.version}), which does not create it: the row held data before that event that no event records, so replaying would lose it. Nothing was changed; declare a baseline for such rows (@Aggregate({ baseline })) for new ones, and see docs/migrating-crud-models.md`,
  );
}

/**
 * A fresh aggregate to replay onto: the column defaults the database gives a new row, as writes
 * that create an aggregate start from, under the aggregate's id.
 */
export async function replayStart(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<ObjectLiteral> {
  const aggregate = await definition.fresh(manager);
  definition.primaryColumn.setEntityValue(aggregate, id);
  return aggregate;
}

/** Applies one event during a replay: the same `apply` code and stored `createdAt` the write used. */
export function replayEvent(definition: AggregateDefinition, aggregate: ObjectLiteral, id: unknown, event: AggregateEvent): ObjectLiteral {
  const applied = applyEvent(event, aggregate, definition, id);
  definition.setVersion(applied, event.version);
  return applied;
}

/** One aggregate replayed to its last event read. */
export interface Replayed {
  /** `String` of the events' aggregate id, as rows are looked up by. */
  key: string;
  /** The id the replay ran under. */
  id: unknown;
  aggregate: ObjectLiteral;
}

/** What {@link replayAll} asks of its caller. */
export interface ReplayHandlers {
  /** The id to replay an aggregate under (its row's, say), given its first event. */
  idOf?: (key: string, first: AggregateEvent) => unknown;
  /** Refuse histories that do not begin with a creating event (rebuild does, verify does not). */
  requireCreating?: boolean;
  /** Called with each aggregate as soon as its last event has been applied. */
  done: (replayed: Replayed) => unknown;
}

/**
 * Replays a stream of events in which each aggregate's events are consecutive and in version
 * order (as EventReader reads them), holding one batch and one aggregate at a time.
 */
export async function replayAll(
  manager: EntityManager,
  definition: AggregateDefinition,
  batches: AsyncIterable<readonly AggregateEvent[]>,
  handlers: ReplayHandlers,
): Promise<void> {
  let current: Replayed | undefined;
  let currentId: unknown;
  for await (const events of batches) {
    for (const event of events) {
      const aggregateId: unknown = event.aggregateId;
      if (current === undefined || (aggregateId !== currentId && String(aggregateId) !== current.key)) {
        if (current) await handlers.done(current);
        const key = String(aggregateId);
        const id = handlers.idOf ? handlers.idOf(key, event) : aggregateId;
        if (handlers.requireCreating) assertReplayable(definition, id, event);
        current = { key, id, aggregate: await replayStart(manager, definition, id) };
        currentId = aggregateId;
      }
      current.aggregate = replayEvent(definition, current.aggregate, current.id, event);
    }
  }
  if (current) await handlers.done(current);
}
