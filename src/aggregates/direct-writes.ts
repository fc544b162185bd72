import type { ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from './aggregate-definition';

/** Aggregate rows the write path inserts itself, which the direct-write guard lets through. */
const ownInserts = new WeakSet<object>();

/** Marks an aggregate row as inserted by the write path. */
export function markOwnInsert(aggregate: ObjectLiteral): void {
  ownInserts.add(aggregate);
}

/**
 * The sourced columns (and version) a TypeORM insert or update outside the event path writes.
 * `save()` says which columns changed; an update through `update()` or a QueryBuilder gives the
 * values it sets, by property name.
 */
export function directlyWrittenColumns(
  definition: AggregateDefinition,
  operation: 'insert' | 'update',
  entity: ObjectLiteral | undefined,
  changed: readonly ColumnMetadata[],
): ColumnMetadata[] {
  if (!entity || ownInserts.has(entity)) return [];
  const guarded = [...definition.sourcedColumns, definition.versionColumn];
  if (operation === 'update' && changed.length > 0) return guarded.filter((column) => changed.includes(column));
  return guarded.filter((column) => column.getEntityValue(entity) !== undefined);
}
