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
export function assertReplayable(definition: AggregateDefinition, id: unknown, events: readonly AggregateEvent[]): void {
  const first = events[0];
  if (!first || getMetadataStorage().eventTypeOf(first.constructor)?.creates) return;
  throw new MissingBaselineError(
    definition.name,
    id,
    `its history begins with ${first.type} (version ${first.version}), which does not create it: the row held data before that event that no event records, so replaying would lose it. Nothing was changed; declare a baseline for such rows (@Aggregate({ baseline })) for new ones, and see docs/migrating-crud-models.md`,
  );
}

/**
 * Replays events onto a fresh aggregate: the same `apply` code and the same stored `createdAt`
 * as the writes used, starting from the column defaults the database gives a new row.
 */
export async function replayEvents(
  manager: EntityManager,
  definition: AggregateDefinition,
  id: unknown,
  events: readonly AggregateEvent[],
): Promise<ObjectLiteral> {
  let aggregate = await definition.fresh(manager);
  definition.primaryColumn.setEntityValue(aggregate, id);
  for (const event of events) {
    aggregate = applyEvent(event, aggregate, definition, id);
    definition.setVersion(aggregate, event.version);
  }
  return aggregate;
}
