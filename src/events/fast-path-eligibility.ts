import type { DataSource, EntityMetadata, EntitySubscriberInterface, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { getMetadataStorage } from '../metadata/metadata-storage';
import type { AggregateEvent } from './aggregate-event';
import { pendingWriteOf } from './pending-write';

/** The properties of `AggregateEvent` an events table has; a class adding columns is written by TypeORM. */
const EVENT_PROPERTIES = ['id', 'aggregateId', 'version', 'type', 'schemaVersion', 'data', 'metadata', 'createdAt', 'position', 'txId'];
/** The library's own before-insert listener on every event, which the one statement stands in for. */
const OWN_LISTENER = 'assertWritePathAttached';

const libraryColumnsOnly = new WeakMap<EntityMetadata, boolean>();

/** Whether an event class's rows hold only the library's columns (no `@Column` of the user's own). */
export function hasOnlyLibraryColumns(metadata: EntityMetadata): boolean {
  let only = libraryColumnsOnly.get(metadata);
  if (only === undefined) {
    only = metadata.columns.every((column) => EVENT_PROPERTIES.includes(column.propertyName) || column.isDiscriminator);
    libraryColumnsOnly.set(metadata, only);
  }
  return only;
}

/**
 * Listeners or subscribers of the application's own that TypeORM would run on an insert into this
 * entity, which only TypeORM's INSERT runs.
 */
export function hasForeignInsertHooks(dataSource: DataSource, own: EntitySubscriberInterface, metadata: EntityMetadata): boolean {
  const insertHook = (type: string) => type === 'before-insert' || type === 'after-insert';
  if (metadata.listeners.some((listener) => insertHook(listener.type) && listener.propertyName !== OWN_LISTENER)) return true;
  const target = metadata.target as Function;
  return dataSource.subscribers.some((subscriber) => {
    if (subscriber === own || (!subscriber.beforeInsert && !subscriber.afterInsert)) return false;
    const listened = subscriber.listenTo?.();
    return !listened || listened === Object || listened === target || (typeof listened === 'function' && listened.isPrototypeOf(target));
  });
}

/** Whether one statement may write an event creating its aggregate. */
export function mayCreate(
  dataSource: DataSource,
  own: EntitySubscriberInterface,
  event: AggregateEvent,
  definition: AggregateDefinition,
  caller: ObjectLiteral | undefined,
): boolean {
  const pending = pendingWriteOf(event);
  return (
    caller === undefined &&
    (pending.expectedVersion === undefined || pending.expectedVersion === 0) &&
    Boolean(getMetadataStorage().eventTypeOf(event.constructor)?.creates) &&
    // A relation set by apply is written by TypeORM's insert, not by this statement.
    !definition.metadata.relations.some((relation) => relation.isOwning) &&
    !hasForeignInsertHooks(dataSource, own, definition.metadata)
  );
}

/**
 * An event creating its aggregate, as `manager.insert` would write the row: every column with a
 * value (the sourced ones, the version, whatever the entity's constructor set), the others left
 * to their database defaults.
 */
export function givenColumns(definition: AggregateDefinition, aggregate: ObjectLiteral): ColumnMetadata[] {
  return definition.metadata.columns.filter((column) => !column.isVirtual && !column.generatedType && column.getEntityValue(aggregate) !== undefined);
}
