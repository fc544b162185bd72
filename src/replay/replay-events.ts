import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import type { AggregateEvent } from '../events/aggregate-event';
import { applyEvent } from '../events/write-path';

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
