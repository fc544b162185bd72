import type { EntityManager } from 'typeorm';
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

/**
 * An aggregate's id as the database returns it (for raw queries, in which an id given by a caller
 * may be of another JavaScript type: a number for a bigint key).
 *
 * @throws AggregateNotFoundError when there is no such row.
 */
export async function rawIdsOf(manager: EntityManager, definition: AggregateDefinition, id: unknown): Promise<unknown[]> {
  const rows: { id: unknown }[] = await manager
    .createQueryBuilder(definition.target, 'aggregate')
    .select(`aggregate.${definition.primaryColumn.propertyPath}`, 'id')
    .whereInIds([id])
    .getRawMany();
  if (rows.length === 0) throw new AggregateNotFoundError(definition.name, id);
  return rows.map((row) => row.id);
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
