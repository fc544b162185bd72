import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { BaselineMismatchError } from '../errors/baseline-mismatch-error';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { MissingBaselineError } from '../errors/missing-baseline-error';
import { AggregateEvent, numberReturnedValues } from '../events/aggregate-event';
import { pendingWriteOf } from '../events/pending-write';
import { applyEvent, assertStorable, writeColumns } from '../events/write-path';
import { getMetadataStorage } from '../metadata/metadata-storage';

/** Rows that need a baseline their aggregate does not declare: one (`id`) or `count` of them. */
export function missingBaseline(definition: AggregateDefinition, id: unknown, count?: number): MissingBaselineError {
  const rows = count === undefined ? 'the row holds' : `${count} row${count === 1 ? '' : 's'} hold`;
  return new MissingBaselineError(
    definition.name,
    id,
    `${rows} data from before ${definition.name} was sourced (version 0, no events) and ${definition.name} declares no baseline: declare @Aggregate({ baseline: (row) => ... }) to say how such a row becomes its first event (docs/migrating-crud-models.md)`,
  );
}

/** The baseline event of a row, checked to belong to the aggregate and to create it. */
function buildBaseline(definition: AggregateDefinition, row: ObjectLiteral, id: unknown): AggregateEvent {
  if (!definition.baseline) throw missingBaseline(definition, id);
  const event = definition.baseline(row);
  if (!(event instanceof AggregateEvent) || !(event instanceof (definition.eventsMetadata.target as Function))) {
    throw new EventSourcingConfigError(
      `the baseline of ${definition.name} returned ${event === null || typeof event !== 'object' ? String(event) : (event as object).constructor.name}, not an event of ${definition.name} built with build()`,
    );
  }
  if (!getMetadataStorage().eventTypeOf(event.constructor)?.creates) {
    throw new EventSourcingConfigError(
      `the baseline of ${definition.name} builds ${event.type}, which is not declared @EventType('${event.type}', { creates: true }): a baseline is the first event of its aggregate, and replays start from it`,
    );
  }
  if (pendingWriteOf(event).state) throw new EventSourcingConfigError(`the baseline of ${definition.name} returned an event that was already written`);
  return event;
}

/**
 * Writes the baseline of a locked row at version 0, in the caller's transaction: the event the
 * aggregate declares, at version 1, with the row's create date (when it has one) as `createdAt`.
 * The row's sourced columns and update date stay as they are; only its version becomes 1. The
 * event must give back the row when replayed, or nothing is written.
 */
export async function writeBaseline(manager: EntityManager, definition: AggregateDefinition, row: ObjectLiteral): Promise<AggregateEvent> {
  const id = definition.idOf(row);
  const event = buildBaseline(definition, row, id);
  const createDate = definition.metadata.createDateColumn?.getEntityValue(row);
  event.createdAt = createDate instanceof Date && !Number.isNaN(createDate.getTime()) ? new Date(createDate.getTime()) : new Date();
  assertStorable(event);
  const replayed = applyEvent(event, await definition.fresh(manager), definition, id);
  const differing = definition.sourcedColumns
    .filter((column) => !definition.sameColumnValue(column, column.getEntityValue(row), column.getEntityValue(replayed)))
    .map((column) => ({ column: column.propertyName, stored: column.getEntityValue(row), replayed: column.getEntityValue(replayed) }));
  if (differing.length > 0) throw new BaselineMismatchError(definition.name, id, event.type, differing);
  event.aggregateId = id;
  event.version = 1;
  // Not through save(): the subscriber would take it for an ordinary event and run the write path.
  await manager.createQueryBuilder().insert().into(event.constructor).values(event).callListeners(false).execute();
  numberReturnedValues(event);
  definition.setVersion(row, 1);
  await writeColumns(manager, definition, row, [], { touchUpdateDate: false });
  pendingWriteOf(event).state = 'written';
  return event;
}
