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
import { RetiredEventTypeError } from '../errors/retired-event-type-error';
import { forgetStoredState, rememberReturnedState, storedStateOf, workingCopy, type StoredState } from '../aggregates/stored-state';
import { sameValue } from '../aggregates/column-values';
import { rowUpdate, type FastStatement } from './fast-statement';
import { instrumentationOf, type TraceContext } from '../observability/instrumentation';
import { isHot, markHot } from './hot-aggregates';

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

/**
 * Checks the event's data and metadata can be stored faithfully, and merges scoped metadata in,
 * and the trace context of the span writing it (the writer's trace continues in its reactors).
 */
export function assertStorable(event: AggregateEvent, trace: TraceContext | undefined): void {
  const storage = getMetadataStorage();
  const eventType = storage.eventTypeOf(event.constructor);
  if (eventType?.retired) throw new RetiredEventTypeError(eventType.name, event.constructor.name);
  event.schemaVersion = eventType?.version ?? 1;
  for (const record of storage.dataOf(event.constructor)) {
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
  // The writer's own trace, not one copied along with metadata from an earlier event.
  if (trace) {
    const { traceparent: _parent, tracestate: _state, ...rest } = event.metadata;
    event.metadata = { ...rest, ...trace };
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
 * The locked write path, run inside the event's INSERT transaction (before the INSERT): apply
 * the event to the caller's stored state and update the row if it is still at that version, or
 * else lock the row, check the expected version and apply the event to the locked state; then
 * fill in the event's aggregate id, version and createdAt. The caller's aggregate
 * instance receives the new state; the log puts instance and event back if the transaction does
 * not commit. When this throws, neither was touched.
 */
export async function writeEvent(
  manager: EntityManager,
  definition: AggregateDefinition,
  event: AggregateEvent,
  log: TransactionLog,
  /** Whether the write may start from the caller's stored state (`fastPath` not false). */
  fromStoredState = true,
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
    assertStorable(event, instrumentationOf(manager.connection).traceContext());
    if (existingId === undefined || existingId === null) {
      const aggregate = await createAggregate(manager, definition, event, pending.expectedVersion);
      event.aggregateId = definition.idOf(aggregate);
      if (caller) {
        definition.copyColumns(aggregate, caller);
        // Values as apply left them, not as read back: the next write reads the row.
        forgetStoredState(caller);
      }
    } else {
      const stored = await updateAggregate(manager, definition, event, existingId, pending.expectedVersion, fromStoredState ? caller : undefined);
      event.aggregateId = stored.get(definition.primaryColumn);
      if (caller) rememberReturnedState(definition, caller, stored);
    }
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

/**
 * The caller's remembered stored state, when a write may start from it instead of the locked
 * row: known, at the expected version (if any), past the baseline, and not contended lately.
 */
export function usableStoredState(definition: AggregateDefinition, caller: ObjectLiteral, expectedVersion: number | undefined): StoredState | undefined {
  const state = storedStateOf(caller);
  if (!state || state.definition !== definition || state.version < 1) return undefined;
  if (expectedVersion !== undefined && expectedVersion !== state.version) return undefined;
  const id = definition.idOf(caller);
  if (!sameValue(state.columns.get(definition.primaryColumn), id) || isHot(definition, id)) return undefined;
  return state;
}

/**
 * Runs `apply` of each event, in order, on a copy of the stored state (setting each event's
 * createdAt first). Undefined when the write must read the locked row instead: an `apply` read
 * what the stored state cannot vouch for, threw (the locked path runs it again and reports the
 * error as usual), or handed the next event another object than the watched copy.
 */
export function applyToStoredState(
  events: readonly AggregateEvent[],
  definition: AggregateDefinition,
  state: StoredState,
): { aggregate: ObjectLiteral; changed: ColumnMetadata[] } | undefined {
  const copy = workingCopy(state);
  let result: ObjectLiteral = copy.aggregate;
  for (const event of events) {
    if (result !== copy.aggregate) return undefined;
    event.createdAt = new Date();
    try {
      result = applyEvent(event, copy.aggregate, definition, state.columns.get(definition.primaryColumn));
    } catch {
      return undefined;
    }
  }
  if (copy.readUnvouched()) return undefined;
  const aggregate = result === copy.aggregate ? copy.target : result;
  return { aggregate, changed: definition.changedColumns(state.columns, aggregate) };
}

/** The parameters of {@link rowUpdate}: the changed columns' values as stored, then the id. */
export function rowUpdateParameters(definition: AggregateDefinition, aggregate: ObjectLiteral, changed: readonly ColumnMetadata[], id: unknown): unknown[] {
  const driver = definition.metadata.connection.driver;
  const parameters = changed.map((column) => driver.preparePersistentValue(column.getEntityValue(aggregate), column));
  parameters.push(driver.preparePersistentValue(id, definition.primaryColumn));
  return parameters;
}

/** The aggregate columns of a returned row, hydrated as TypeORM would load them. */
export function returnedState(definition: AggregateDefinition, statement: FastStatement, row: Record<string, unknown>): Map<ColumnMetadata, unknown> {
  const driver = definition.metadata.connection.driver;
  return new Map(statement.returned.map((column, index) => [column, driver.prepareHydratedValue(row[`c${index}`], column)]));
}

/**
 * Applies the event and updates the row, returning its stored columns. From the caller's stored
 * state when known: one UPDATE conditional on its version. Otherwise, or when that UPDATE finds
 * the row moved on, under the row lock: SELECT ... FOR UPDATE, apply, UPDATE.
 */
async function updateAggregate(
  manager: EntityManager,
  definition: AggregateDefinition,
  event: AggregateEvent,
  id: unknown,
  expectedVersion: number | undefined,
  caller: ObjectLiteral | undefined,
): Promise<Map<ColumnMetadata, unknown>> {
  const state = caller && usableStoredState(definition, caller, expectedVersion);
  const applied = state && applyToStoredState([event], definition, state);
  if (state && applied) {
    const statement = rowUpdate(definition, applied.changed, true);
    const parameters = [...rowUpdateParameters(definition, applied.aggregate, applied.changed, id), state.version];
    const [rows] = await queryUpdate(manager, statement, parameters, definition, id);
    if (rows.length === 1) {
      event.version = state.version + 1;
      return returnedState(definition, statement, rows[0]);
    }
    markHot(definition, id);
  }
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
  const changed = definition.changedColumns(before, aggregate);
  const statement = rowUpdate(definition, changed, false);
  const [rows] = await queryUpdate(manager, statement, rowUpdateParameters(definition, aggregate, changed, id), definition, id);
  return returnedState(definition, statement, rows[0]);
}

/** An UPDATE through the manager: TypeORM answers `[rows, count]`. */
async function queryUpdate(manager: EntityManager, statement: FastStatement, parameters: unknown[], definition: AggregateDefinition, id: unknown): Promise<[Record<string, unknown>[], number]> {
  try {
    return await manager.query(statement.text, parameters);
  } catch (error) {
    throw asConcurrencyError(error, definition, id);
  }
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
