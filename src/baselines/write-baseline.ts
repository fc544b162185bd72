import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { BaselineMismatchError, type BaselineColumnMismatch } from '../errors/baseline-mismatch-error';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { MissingBaselineError } from '../errors/missing-baseline-error';
import { AggregateEvent, numberReturnedValues } from '../events/aggregate-event';
import { pendingWriteOf } from '../events/pending-write';
import { applyEvent, assertStorable } from '../events/write-path';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { instrumentationOf } from '../observability/instrumentation';
import { tableSql } from '../schema/table-sql';

/** Rows that need a baseline their aggregate does not declare: one (`id`) or `count` of them. */
export function missingBaseline(definition: AggregateDefinition, id: unknown, count?: number): MissingBaselineError {
  const rows = count === undefined ? 'the row holds' : `${count} row${count === 1 ? '' : 's'} hold`;
  return new MissingBaselineError(
    definition.name,
    id,
    `${rows} data from before ${definition.name} was sourced (version 0, no events) and ${definition.name} declares no baseline: declare @Aggregate({ baseline: (row) => ... }) to say how such a row becomes its first event (docs/migrating-crud-models.md)`,
  );
}

/** A locked row at version 0 with its baseline event, built and checked, not written yet. */
export interface PreparedBaseline {
  readonly row: ObjectLiteral;
  readonly id: unknown;
  readonly event: AggregateEvent;
  /** The row as replaying the event gives it. */
  readonly replayed: ObjectLiteral;
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
 * Builds the baseline of a locked row and replays it: its data must be storable and give back the
 * row's sourced columns as JavaScript reads them. Its `createdAt` is the row's create date when
 * it has one.
 */
export async function prepareBaseline(manager: EntityManager, definition: AggregateDefinition, row: ObjectLiteral): Promise<PreparedBaseline> {
  const id = definition.idOf(row);
  const event = buildBaseline(definition, row, id);
  const createDate = definition.metadata.createDateColumn?.getEntityValue(row);
  event.createdAt = createDate instanceof Date && !Number.isNaN(createDate.getTime()) ? new Date(createDate.getTime()) : new Date();
  assertStorable(event, instrumentationOf(manager.connection).traceContext());
  const replayed = applyEvent(event, await definition.fresh(manager), definition, id);
  const differing = definition.sourcedColumns
    .filter((column) => !definition.sameColumnValue(column, column.getEntityValue(row), column.getEntityValue(replayed)))
    .map((column) => ({ column: column.propertyName, stored: column.getEntityValue(row), replayed: column.getEntityValue(replayed) }));
  if (differing.length > 0) throw new BaselineMismatchError(definition.name, id, event.type, differing);
  return { row, id, event, replayed };
}

const PARAMETER_LIMIT = 60000;

/**
 * How a column's stored value and the replayed value (a text parameter), as writing it back would
 * store it, are compared in SQL, and shown.
 */
function comparison(definition: AggregateDefinition, column: ColumnMetadata, stored: string, parameter: string): { differs: string; stored: string; replayed: string } {
  const type = definition.metadata.connection.driver.normalizeType(column);
  const text = (replayed: string) => ({ differs: `${stored}::text IS DISTINCT FROM ${replayed}`, stored: `${stored}::text`, replayed });
  // jsonb prints numbers as stored (1234.50), so its text tells what a rebuild would change.
  if (type === 'json' || type === 'jsonb') {
    return { differs: `${stored}::jsonb::text IS DISTINCT FROM (${parameter})::jsonb::text`, stored: `${stored}::jsonb::text`, replayed: `(${parameter})::jsonb::text` };
  }
  if (column.isArray) return text(`(${parameter})::${type}[]::text`);
  // Stored at the column's scale: 10.5 written into numeric(12,2) is the 10.50 already there.
  if (type === 'numeric' || type === 'decimal') return { differs: `${stored} IS DISTINCT FROM (${parameter})::numeric`, stored: `${stored}::text`, replayed: `(${parameter})::numeric::text` };
  if (type === 'enum' || type === 'simple-enum' || type === 'simple-array' || type === 'simple-json') return text(parameter);
  return text(`(${parameter})::${type}::text`);
}

function parameterOf(definition: AggregateDefinition, column: ColumnMetadata, value: unknown): unknown {
  const prepared = definition.metadata.connection.driver.preparePersistentValue(value, column);
  if (prepared === null || prepared === undefined) return null;
  if (prepared instanceof Date || Array.isArray(prepared)) return prepared;
  return typeof prepared === 'object' ? JSON.stringify(prepared) : String(prepared);
}

/**
 * Compares, in PostgreSQL, each row's sourced columns with the values its replayed baseline would
 * write back: JavaScript reads some values less precisely than PostgreSQL stores them
 * (timestamps with microseconds, jsonb numbers beyond 2^53 or with trailing zeros), and such a
 * baseline would not give back the row. One query per chunk of rows.
 */
export async function assertExactInDatabase(manager: EntityManager, definition: AggregateDefinition, prepared: readonly PreparedBaseline[]): Promise<void> {
  const columns = definition.sourcedColumns;
  if (columns.length === 0 || prepared.length === 0) return;
  const driver = manager.connection.driver;
  const perRow = columns.length + 1;
  const chunk = Math.max(1, Math.floor(PARAMETER_LIMIT / perRow));
  const table = tableSql(driver, definition.metadata);
  const key = driver.escape(definition.primaryColumn.databaseName);
  for (let start = 0; start < prepared.length; start += chunk) {
    const part = prepared.slice(start, start + chunk);
    const parameters: unknown[] = [];
    const selections = columns.flatMap((column, index) => {
      const stored = `t.${driver.escape(column.databaseName)}`;
      const sql = comparison(definition, column, stored, `v."c${index}"`);
      return [`(${sql.differs}) AS "d${index}"`, `${sql.stored} AS "s${index}"`, `${sql.replayed} AS "r${index}"`];
    });
    const rows = part.map((baseline) => {
      parameters.push(String(driver.preparePersistentValue(baseline.id, definition.primaryColumn)));
      const placeholders = [`$${parameters.length}::text`];
      for (const column of columns) {
        parameters.push(parameterOf(definition, column, column.getEntityValue(baseline.replayed)));
        placeholders.push(`$${parameters.length}::text`);
      }
      return `(${placeholders.join(', ')})`;
    });
    const found: Record<string, string | boolean | null>[] = await manager.query(
      `SELECT v."id" AS "id", ${selections.join(', ')} FROM (VALUES ${rows.join(', ')}) AS v("id", ${columns.map((_, index) => `"c${index}"`).join(', ')})
       JOIN ${table} t ON t.${key}::text = v."id"`,
      parameters,
    );
    for (const result of found) {
      const differing: BaselineColumnMismatch[] = columns
        .filter((_, index) => result[`d${index}`] === true)
        .map((column) => {
          const index = columns.indexOf(column);
          return { column: column.propertyName, stored: result[`s${index}`], replayed: result[`r${index}`] };
        });
      if (differing.length === 0) continue;
      const baseline = part.find((candidate) => String(driver.preparePersistentValue(candidate.id, definition.primaryColumn)) === result.id)!;
      throw new BaselineMismatchError(
        definition.name,
        baseline.id,
        baseline.event.type,
        differing,
        'JavaScript cannot hold these values exactly (PostgreSQL shows them as text here): round them in the table first (date_trunc(\'milliseconds\', ...) for timestamps), or exclude the column',
      );
    }
  }
}

/**
 * Writes prepared baselines, in the caller's transaction: the events at version 1 (one INSERT per
 * event class), then the rows' version, and nothing else, so sourced columns and the update date
 * stay as they were.
 */
export async function insertBaselines(manager: EntityManager, definition: AggregateDefinition, prepared: readonly PreparedBaseline[]): Promise<void> {
  if (prepared.length === 0) return;
  const byClass = new Map<Function, AggregateEvent[]>();
  for (const { id, event } of prepared) {
    event.aggregateId = id;
    event.version = 1;
    byClass.set(event.constructor, [...(byClass.get(event.constructor) ?? []), event]);
  }
  // Not through save(): the subscriber would take them for ordinary events and run the write path.
  for (const [target, events] of byClass) {
    await manager.createQueryBuilder().insert().into(target).values(events).callListeners(false).execute();
  }
  const driver = manager.connection.driver;
  const table = tableSql(driver, definition.metadata);
  await manager.query(
    `UPDATE ${table} SET ${driver.escape(definition.versionColumn.databaseName)} = 1 WHERE ${driver.escape(definition.primaryColumn.databaseName)}::text = ANY($1::text[])`,
    [prepared.map(({ id }) => String(driver.preparePersistentValue(id, definition.primaryColumn)))],
  );
  for (const { row, event } of prepared) {
    numberReturnedValues(event);
    definition.setVersion(row, 1);
    pendingWriteOf(event).state = 'written';
  }
}

/**
 * Writes the baseline of a locked row at version 0, in the caller's transaction (lazy adoption):
 * the event the aggregate declares, at version 1, checked to give back the row exactly.
 */
export async function writeBaseline(manager: EntityManager, definition: AggregateDefinition, row: ObjectLiteral): Promise<AggregateEvent> {
  const prepared = await prepareBaseline(manager, definition, row);
  await assertExactInDatabase(manager, definition, [prepared]);
  await insertBaselines(manager, definition, [prepared]);
  return prepared.event;
}
