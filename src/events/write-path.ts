import type { EntityManager, ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { isPlainObject } from '../aggregates/column-values';
import { AggregateNotFoundError } from '../errors/aggregate-not-found-error';
import { ConcurrencyError } from '../errors/concurrency-error';
import { EventApplyError } from '../errors/event-apply-error';
import { AggregateRequiredError } from '../errors/aggregate-required-error';
import { UsageError } from '../errors/usage-error';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { markOwnInsert } from '../aggregates/direct-writes';
import { InvalidEventDataError } from '../errors/invalid-event-data-error';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { aggregateKeyOf, type AggregateEvent } from './aggregate-event';
import { assertDataValue, assertJsonFaithful } from './event-data';
import { scopedMetadata } from './metadata-scope';
import { pendingWriteOf } from './pending-write';
import { writeBaseline } from '../baselines/write-baseline';
import { eventFieldsOf, restoreEventFields, transactionDepthOf, type TransactionLog } from './transaction-log';
import { tableSql } from '../schema/table-sql';

const retryableCodes = new Set(['40001', '40P01', '55P03']);

/**
 * Maps PostgreSQL's serialization failures, deadlocks and lock timeouts to a retryable
 * {@link ConcurrencyError}; any other error is returned unchanged.
 */
export function asConcurrencyError(error: unknown, definition: AggregateDefinition, aggregateId: unknown): unknown {
  const code = (error as { driverError?: { code?: string }; code?: string })?.driverError?.code ?? (error as { code?: string })?.code;
  if (typeof code !== 'string' || !retryableCodes.has(code)) return error;
  return new ConcurrencyError(definition.name, aggregateId, undefined, undefined, true, {
    cause: error,
    detail: (error as Error).message,
  });
}

/** Runs `apply` and returns the aggregate it produced, or an {@link EventApplyError}. */
export function applyEvent(event: AggregateEvent, aggregate: ObjectLiteral, definition: AggregateDefinition, aggregateId: unknown): ObjectLiteral {
  let result: unknown;
  try {
    result = event.apply(aggregate);
  } catch (error) {
    throw new EventApplyError(event.type, definition.name, aggregateId, error);
  }
  if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
    throw new EventApplyError(event.type, definition.name, aggregateId, new TypeError('apply must be synchronous, but it returned a Promise'));
  }
  return result && typeof result === 'object' ? (result as ObjectLiteral) : aggregate;
}

/** Checks the event's data and metadata can be stored faithfully, and merges scoped metadata in. */
export function assertStorable(event: AggregateEvent): void {
  for (const record of getMetadataStorage().dataOf(event.constructor)) {
    assertDataValue(event.type, record, (event as unknown as Record<string, unknown>)[record.propertyName]);
  }
  const scoped = scopedMetadata();
  if (scoped && (event.metadata === undefined || event.metadata === null || isPlainObject(event.metadata))) {
    event.metadata = { ...scoped, ...event.metadata };
  }
  if (event.metadata === undefined || event.metadata === null) event.metadata = {};
  if (!isPlainObject(event.metadata)) {
    throw new InvalidEventDataError(event.type, 'metadata', 'must be a plain object');
  }
  assertJsonFaithful(event.type, 'metadata', event.metadata);
}

/**
 * Checks, before any SQL, what SQL cannot settle: the event was made by `build`, and it has an
 * aggregate (whose id fits the primary column) or its type creates one. A second write of one
 * instance is refused earlier, by the subscriber's claim.
 */
function assertWritable(definition: AggregateDefinition, event: AggregateEvent, existingId: unknown): void {
  const pending = pendingWriteOf(event);
  if (!pending.built) {
    throw new UsageError(
      event.type,
      'event',
      `was not made by ${event.constructor.name}.build(): build() checks and keeps its @Data attributes, which manager.create() and new leave out`,
    );
  }
  if (existingId === undefined || existingId === null) {
    if (!getMetadataStorage().eventTypeOf(event.constructor)?.creates) {
      throw new AggregateRequiredError(event.type, definition.name, aggregateKeyOf(definition.target));
    }
  } else {
    assertAggregateId(definition, event.type, existingId);
  }
}

/**
 * The write path, run inside the event's INSERT transaction (before the INSERT): lock the
 * aggregate row, check the expected version, apply the event to the locked state, write the
 * aggregate, and fill in the event's aggregate id, version and createdAt. The caller's aggregate
 * instance receives the new state; the log puts instance and event back if the transaction does
 * not commit. When this throws, neither was touched.
 */
export async function writeEvent(
  manager: EntityManager,
  definition: AggregateDefinition,
  event: AggregateEvent,
  log: TransactionLog,
): Promise<void> {
  const queryRunner = manager.queryRunner;
  if (!queryRunner || !queryRunner.isTransactionActive) {
    throw new UsageError(
      event.type,
      'transaction',
      'is missing: manager.insert(event) and save(event, { transaction: false }) write without one, but an event and its aggregate are written together: use manager.save(event) or es.append(event), or insert inside manager.transaction()',
    );
  }
  const pending = pendingWriteOf(event);
  const caller = pending.aggregate as ObjectLiteral | undefined;
  const existingId = caller ? definition.idOf(caller) : event.aggregateId;
  assertWritable(definition, event, existingId);
  const eventBefore = eventFieldsOf(event);
  const depth = transactionDepthOf(queryRunner);
  const callerBefore = caller && log.needsSnapshot(queryRunner, caller, depth) ? definition.snapshot(caller) : undefined;
  try {
    assertStorable(event);
    const aggregate =
      existingId === undefined || existingId === null
        ? await createAggregate(manager, definition, event, pending.expectedVersion)
        : await updateAggregate(manager, definition, event, existingId, pending.expectedVersion);
    event.aggregateId = definition.idOf(aggregate);
    if (caller) definition.copyColumns(aggregate, caller);
  } catch (error) {
    restoreEventFields(event, eventBefore);
    throw error;
  }
  log.record(queryRunner, { event, definition, depth, eventBefore }, caller && callerBefore ? { instance: caller, columns: callerBefore } : undefined);
}

async function createAggregate(
  manager: EntityManager,
  definition: AggregateDefinition,
  event: AggregateEvent,
  expectedVersion: number | undefined,
): Promise<ObjectLiteral> {
  if (expectedVersion !== undefined && expectedVersion !== 0) {
    throw new ConcurrencyError(definition.name, undefined, expectedVersion, 0, false);
  }
  const fresh = await definition.fresh(manager);
  event.createdAt = new Date();
  const aggregate = applyEvent(event, fresh, definition, undefined);
  event.version = 1;
  definition.setVersion(aggregate, 1);
  markOwnInsert(aggregate);
  await manager.insert(definition.target, aggregate);
  return aggregate;
}

async function updateAggregate(
  manager: EntityManager,
  definition: AggregateDefinition,
  event: AggregateEvent,
  id: unknown,
  expectedVersion: number | undefined,
): Promise<ObjectLiteral> {
  let locked: ObjectLiteral | null;
  try {
    locked = await manager
      .createQueryBuilder(definition.target, 'aggregate')
      .setLock('pessimistic_write')
      .whereInIds([id])
      .getOne();
  } catch (error) {
    throw asConcurrencyError(error, definition, id);
  }
  if (!locked) throw new AggregateNotFoundError(definition.name, id);
  let current = definition.versionOf(locked);
  if (expectedVersion !== undefined && expectedVersion !== current) {
    throw new ConcurrencyError(definition.name, id, expectedVersion, current, false);
  }
  if (current === 0) {
    // A row from before the model was sourced: its baseline comes first, in this transaction.
    await writeBaseline(manager, definition, locked);
    current = 1;
  }
  const before = definition.snapshot(locked);
  event.createdAt = new Date();
  const aggregate = applyEvent(event, locked, definition, id);
  event.version = current + 1;
  definition.setVersion(aggregate, event.version);
  await writeColumns(manager, definition, aggregate, definition.changedColumns(before, aggregate));
  return aggregate;
}

/**
 * One parameterised UPDATE of the given columns plus the version (and the update-date column,
 * whose new value is read back), keyed by primary key.
 */
export async function writeColumns(
  manager: EntityManager,
  definition: AggregateDefinition,
  aggregate: ObjectLiteral,
  columns: readonly ColumnMetadata[],
): Promise<void> {
  const driver = manager.connection.driver;
  const parameters: unknown[] = [];
  const assignments = [...columns, definition.versionColumn].map((column) => {
    parameters.push(driver.preparePersistentValue(column.getEntityValue(aggregate), column));
    return `${driver.escape(column.databaseName)} = $${parameters.length}`;
  });
  const updateDate = definition.metadata.updateDateColumn;
  if (updateDate) assignments.push(`${driver.escape(updateDate.databaseName)} = CURRENT_TIMESTAMP`);
  parameters.push(driver.preparePersistentValue(definition.idOf(aggregate), definition.primaryColumn));
  const table = tableSql(driver, definition.metadata);
  const returning = updateDate ? ` RETURNING ${driver.escape(updateDate.databaseName)} AS "updated"` : '';
  const sql = `UPDATE ${table} SET ${assignments.join(', ')} WHERE ${driver.escape(definition.primaryColumn.databaseName)} = $${parameters.length}${returning}`;
  const result = await manager.query(sql, parameters);
  if (updateDate) {
    const rows = Array.isArray(result[0]) ? result[0] : result;
    if (rows[0]) updateDate.setEntityValue(aggregate, driver.prepareHydratedValue(rows[0].updated, updateDate));
  }
}
