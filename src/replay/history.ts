import { In, type EntityManager } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { AggregateNotFoundError } from '../errors/aggregate-not-found-error';
import type { AggregateEvent } from '../events/aggregate-event';

/** An aggregate's events in version order; an aggregate that does not exist is an error. */
export async function loadHistory(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<AggregateEvent[]> {
  assertAggregateId(definition, `history(${definition.name})`, id);
  const events = await manager.find<AggregateEvent>(definition.eventsMetadata.target, {
    where: { aggregateId: id },
    order: { version: 'ASC' },
  });
  if (events.length === 0) await assertExists(manager, definition, id);
  return events;
}

export async function assertExists(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<void> {
  const exists = await manager.createQueryBuilder(definition.target, 'aggregate').whereInIds([id]).getExists();
  if (!exists) throw new AggregateNotFoundError(definition.name, id);
}

/** The events of several aggregates, grouped by aggregate id, each group in version order. */
export async function loadHistories(
  manager: EntityManager,
  definition: AggregateDefinition,
  ids: readonly unknown[],
): Promise<Map<string, AggregateEvent[]>> {
  // Keyed by String(id): raw ids and hydrated ids of one row may differ in type (bigint).
  const events = await manager.find<AggregateEvent>(definition.eventsMetadata.target, {
    where: { aggregateId: In(ids as unknown[]) },
    order: { aggregateId: 'ASC', version: 'ASC' },
  });
  const byId = new Map<string, AggregateEvent[]>(ids.map((id) => [String(id), []]));
  for (const event of events) byId.get(String(event.aggregateId))?.push(event);
  return byId;
}

/**
 * Walks an aggregate table in primary-key order, a page at a time (keyset pagination), so memory
 * stays bounded however many rows there are.
 */
export async function* aggregateIdPages(
  manager: EntityManager,
  definition: AggregateDefinition,
  pageSize: number,
  { unversionedOnly = false }: { unversionedOnly?: boolean } = {},
): AsyncGenerator<unknown[]> {
  const key = definition.primaryColumn.propertyPath;
  let last: unknown;
  for (;;) {
    const query = manager.createQueryBuilder(definition.target, 'aggregate').select(`aggregate.${key}`, 'id').orderBy(`aggregate.${key}`, 'ASC').limit(pageSize);
    query.where('TRUE');
    if (unversionedOnly) query.andWhere(`aggregate.${definition.versionColumn.propertyPath} = 0`);
    if (last !== undefined) query.andWhere(`aggregate.${key} > :last`, { last });
    const rows: { id: unknown }[] = await query.getRawMany();
    if (rows.length === 0) return;
    const ids = rows.map((row) => row.id);
    yield ids;
    if (rows.length < pageSize) return;
    last = ids[ids.length - 1];
  }
}
