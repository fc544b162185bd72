import { QueryFailedError, type DataSource, type EntityManager, type EntitySubscriberInterface, type ObjectLiteral, type QueryRunner } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { assertAggregateId } from '../aggregates/aggregate-id';
import { rememberReturnedState } from '../aggregates/stored-state';
import { isConnectionLoss } from '../errors/connection-loss';
import { ConnectionLostError } from '../errors/connection-lost-error';
import { ConcurrencyError } from '../errors/concurrency-error';
import type { OutboxRow } from '../reactors/outbox';
import type { Reactions } from '../reactors/reactions';
import { currentTrigger } from '../reactors/trigger-scope';
import type { AggregateEvent } from './aggregate-event';
import { insertStatement, retireStatementName, statementName, updateManyStatement, updateStatement, type FastStatement } from './fast-statement';
import { markHot } from './hot-aggregates';
import { givenColumns, hasForeignInsertHooks, hasOnlyLibraryColumns, mayCreate } from './fast-path-eligibility';
import { pendingWriteOf } from './pending-write';
import { eventFieldsOf, restoreEventFields, transactionDepthOf, type TransactionLog, type WrittenEvent } from './transaction-log';
import { instrumentationOf } from '../observability/instrumentation';
import { applyEvent, applyToStoredState, assertStorable, returnedState, rowUpdateParameters, usableStoredState } from './write-path';

/** How the fast path sends its statement. */
export interface FastPathOptions {
  /** `'unnamed'` for connection poolers (PgBouncer in transaction mode) that cannot keep named statements. */
  statements: 'named' | 'unnamed';
}

/** What the fast path needs of the subscriber: its identity, and its per-connection queue. */
export interface WriteQueue extends EntitySubscriberInterface {
  runOnConnection(queryRunner: QueryRunner, work: () => Promise<void>): Promise<void>;
}

/** The row and event fields one statement wrote. */
interface Written {
  stored: Map<ColumnMetadata, unknown>;
  outbox: OutboxRow[];
}

/** A prepared plan a migration made stale (0A000), met inside a transaction, which it aborted. */
class StalePlan extends Error {
  constructor(readonly failure: QueryFailedError) {
    super(failure.message);
  }

  /** In the caller's transaction: nothing was written, and running the transaction again works. */
  asConcurrencyError(definition: AggregateDefinition, id: unknown): ConcurrencyError {
    return new ConcurrencyError(definition.name, id, undefined, undefined, true, {
      cause: this.failure,
      detail: `${this.failure.message}: a migration changed the table under a prepared statement, which the library prepares again; the transaction was aborted, run it again`,
    });
  }
}

/**
 * The one-statement write of `es.append` and commands: when the caller's aggregate instance has
 * a known stored state (or the event creates its aggregate), `apply` runs on a copy of that state
 * and one prepared statement updates the row if it is still at that version, inserts the event and
 * its outbox rows. Whenever a guarantee needs more (no known state, a row that moved on, `apply`
 * reading what the state cannot vouch for, hooks of the user's own on the tables), it answers
 * `false` before changing anything and the locked path writes the event.
 */
export class FastPath {

  constructor(
    private readonly dataSource: DataSource,
    private readonly reactions: Reactions,
    private readonly log: TransactionLog,
    private readonly queue: WriteQueue,
    private readonly onCommitted: (written: WrittenEvent[]) => void,
    private readonly options: FastPathOptions,
  ) {}

  /** Writes the event, or answers `false` having changed nothing, for the locked path to write it. */
  async tryAppend(event: AggregateEvent, definition: AggregateDefinition, manager: EntityManager): Promise<boolean> {
    // A trigger reactor's write may meet its own event's row lock: the locked path detects that.
    if (currentTrigger() !== undefined || manager.connection !== this.dataSource) return false;
    const pending = pendingWriteOf(event);
    if (!pending.built || pending.state) return false;
    const eventMetadata = this.dataSource.getMetadata(event.constructor);
    if (!hasOnlyLibraryColumns(eventMetadata) || hasForeignInsertHooks(this.dataSource, this.queue, eventMetadata)) return false;
    const caller = pending.aggregate as ObjectLiteral | undefined;
    const id = caller ? definition.idOf(caller) : event.aggregateId;
    const creates = id === undefined || id === null;
    if (creates ? !mayCreate(this.dataSource, this.queue, event, definition, caller) : !caller) return false;
    if (!creates) assertAggregateId(definition, event.type, id);

    const state = caller && !creates ? usableStoredState(definition, caller, pending.expectedVersion) : undefined;
    if (!creates && !state) return false;
    const eventBefore = eventFieldsOf(event);
    pending.state = 'in flight';
    pending.awaitingCommit = false;
    try {
      assertStorable(event, instrumentationOf(this.dataSource).traceContext());
      const reactors = this.reactions.asyncReactorNames(event);
      let statement: FastStatement;
      let parameters: unknown[];
      if (state) {
        const applied = applyToStoredState([event], definition, state);
        if (!applied) return this.#giveUp(event, eventBefore);
        statement = updateStatement(definition, applied.changed, reactors.length > 0);
        parameters = [...rowUpdateParameters(definition, applied.aggregate, applied.changed, id), state.version];
      } else {
        const fresh = await definition.fresh(this.dataSource.manager);
        event.createdAt = new Date();
        const aggregate = applyEvent(event, fresh, definition, undefined);
        definition.setVersion(aggregate, 1);
        const given = givenColumns(definition, aggregate);
        statement = insertStatement(definition, given, reactors.length > 0);
        const driver = this.dataSource.driver;
        parameters = given.map((column) => driver.preparePersistentValue(column.getEntityValue(aggregate), column));
      }
      parameters.push(...this.#storedValues(event));
      if (reactors.length > 0) parameters.push(definition.eventsMetadata.tableName, reactors);
      const written = await this.#write(event, definition, caller, id, statement, parameters, manager, eventBefore);
      if (!written) {
        markHot(definition, id);
        return this.#giveUp(event, eventBefore);
      }
      return true;
    } catch (error) {
      restoreEventFields(event, eventBefore);
      pending.state = undefined;
      throw error;
    }
  }

  /**
   * Several consecutive events of one aggregate instance, in the caller's transaction (a
   * command's): one statement for all of them, from the instance's stored state. Answers `false`,
   * having changed nothing, whenever one event at a time is needed.
   */
  async tryAppendMany(events: readonly AggregateEvent[], definition: AggregateDefinition, manager: EntityManager): Promise<boolean> {
    const queryRunner = manager.queryRunner;
    if (!queryRunner?.isTransactionActive || currentTrigger() !== undefined || manager.connection !== this.dataSource || events.length < 2) return false;
    const caller = pendingWriteOf(events[0]).aggregate as ObjectLiteral | undefined;
    const id = caller ? definition.idOf(caller) : undefined;
    if (!caller || id === undefined || id === null) return false;
    for (const [index, event] of events.entries()) {
      const pending = pendingWriteOf(event);
      const metadata = this.dataSource.hasMetadata(event.constructor) ? this.dataSource.getMetadata(event.constructor) : undefined;
      if (!metadata || metadata.tablePath !== definition.eventsMetadata.tablePath) return false;
      if (!pending.built || pending.state || pending.aggregate !== caller || (index > 0 && pending.expectedVersion !== undefined)) return false;
      if (event.id !== undefined && event.id !== null) return false;
      if (!hasOnlyLibraryColumns(metadata) || hasForeignInsertHooks(this.dataSource, this.queue, metadata) || this.reactions.hasTriggers(event)) return false;
    }
    assertAggregateId(definition, events[0].type, id);
    const state = usableStoredState(definition, caller, pendingWriteOf(events[0]).expectedVersion);
    if (!state) return false;
    const before = events.map((event) => eventFieldsOf(event));
    const giveUp = () => {
      events.forEach((event, index) => {
        restoreEventFields(event, before[index]);
        pendingWriteOf(event).state = undefined;
      });
      return false;
    };
    for (const event of events) pendingWriteOf(event).state = 'in flight';
    try {
      const trace = instrumentationOf(this.dataSource).traceContext();
      for (const event of events) assertStorable(event, trace);
      const applied = applyToStoredState(events, definition, state);
      if (!applied) return giveUp();
      const { aggregate, changed } = applied;
      const reactors = events.map((event) => this.reactions.asyncReactorNames(event));
      const outbox = reactors.some((names) => names.length > 0);
      const statement = updateManyStatement(definition, changed, outbox);
      const values = events.map((event) => this.#storedValues(event));
      const parameters = [
        ...rowUpdateParameters(definition, aggregate, changed, id),
        state.version,
        events.length,
        ...[0, 1, 2, 3, 4].map((field) => values.map((stored) => stored[field])),
      ];
      if (outbox) {
        parameters.push(
          definition.eventsMetadata.tableName,
          reactors.flatMap((names, index) => names.map(() => index + 1)),
          reactors.flat(),
        );
      }
      const row = await this.#query(queryRunner, statement, parameters, definition, id, 'caller');
      if (!row) {
        markHot(definition, id);
        return giveUp();
      }
      const stored = returnedState(definition, statement, row);
      const written = (row.events as { id: string; position: string; txId: string; schemaVersion: number; version: number }[]).sort((a, b) => a.version - b.version);
      const outboxRows = (row.outbox as OutboxRow[] | undefined) ?? [];
      const depth = transactionDepthOf(queryRunner);
      const callerBefore = this.log.needsSnapshot(queryRunner, caller, depth) ? definition.snapshot(caller) : undefined;
      rememberReturnedState(definition, caller, stored);
      events.forEach((event, index) => {
        const fields = written[index];
        event.aggregateId = stored.get(definition.primaryColumn);
        event.version = fields.version;
        event.id = Number(fields.id);
        event.position = Number(fields.position);
        event.txId = Number(fields.txId);
        event.schemaVersion = fields.schemaVersion;
        const rows = outboxRows.filter((outboxRow) => outboxRow.eventId === event.id);
        this.log.record(
          queryRunner,
          { event, definition, depth, eventBefore: before[index], outbox: rows.length > 0 ? rows : undefined },
          index === 0 && callerBefore ? { instance: caller, columns: callerBefore } : undefined,
        );
        pendingWriteOf(event).awaitingCommit = true;
      });
      return true;
    } catch (error) {
      giveUp();
      throw error instanceof StalePlan ? error.asConcurrencyError(definition, id) : error;
    }
  }

  #giveUp(event: AggregateEvent, eventBefore: ReturnType<typeof eventFieldsOf>): false {
    restoreEventFields(event, eventBefore);
    pendingWriteOf(event).state = undefined;
    return false;
  }

  /**
   * Runs the statement: in the caller's transaction, in one of its own when trigger reactors run
   * with it, or alone in autocommit. Answers undefined when the row was not at the version.
   */
  async #write(
    event: AggregateEvent,
    definition: AggregateDefinition,
    caller: ObjectLiteral | undefined,
    id: unknown,
    statement: FastStatement,
    parameters: unknown[],
    manager: EntityManager,
    eventBefore: ReturnType<typeof eventFieldsOf>,
  ): Promise<Written | undefined> {
    const given = manager.queryRunner;
    const queryRunner = given ?? this.dataSource.createQueryRunner();
    const inTransaction = queryRunner.isTransactionActive;
    const triggers = this.reactions.hasTriggers(event);
    let failure: unknown;
    try {
      if (!inTransaction && !triggers) {
        const row = await this.#query(queryRunner, statement, parameters, definition, id, 'autocommit');
        if (!row) return undefined;
        const written = this.#take(event, definition, statement, row);
        if (caller) rememberReturnedState(definition, caller, written.stored);
        pendingWriteOf(event).state = 'written';
        this.onCommitted([{ event, definition, depth: 1, eventBefore, outbox: written.outbox }]);
        return written;
      }
      for (let attempt = 1; ; attempt += 1) {
        if (!inTransaction) await queryRunner.startTransaction();
        try {
          const row = await this.#query(queryRunner, statement, parameters, definition, id, inTransaction ? 'caller' : 'own');
          if (!row) {
            if (!inTransaction) await queryRunner.commitTransaction();
            return undefined;
          }
          const written = this.#take(event, definition, statement, row);
          const depth = transactionDepthOf(queryRunner);
          const callerBefore = caller && this.log.needsSnapshot(queryRunner, caller, depth) ? definition.snapshot(caller) : undefined;
          if (caller) rememberReturnedState(definition, caller, written.stored);
          this.log.record(
            queryRunner,
            { event, definition, depth, eventBefore, outbox: written.outbox.length > 0 ? written.outbox : undefined },
            caller && callerBefore ? { instance: caller, columns: callerBefore } : undefined,
          );
          if (triggers) await this.queue.runOnConnection(queryRunner, () => this.reactions.runTriggers(queryRunner.manager, definition, event));
          pendingWriteOf(event).awaitingCommit = true;
          if (!inTransaction) await queryRunner.commitTransaction();
          return written;
        } catch (error) {
          if (!inTransaction && queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
          // The statement is the transaction's first: after a stale plan, start it again once.
          if (error instanceof StalePlan && !inTransaction && attempt === 1) continue;
          throw error instanceof StalePlan ? error.asConcurrencyError(definition, id) : error;
        }
      }
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      if (!given) {
        // A connection that broke must not go back to the pool, where the next query would meet it.
        if (isConnectionLoss(failure)) await (queryRunner as QueryRunner & { releasePostgresConnection(error: unknown): Promise<void> }).releasePostgresConnection(failure);
        else await queryRunner.release();
      }
    }
  }

  /**
   * Sends the statement, logged like TypeORM's own queries. In autocommit, once more if a
   * migration made its prepared plan stale; in a transaction, which that error aborts, the
   * caller decides ({@link StalePlan}).
   */
  async #query(
    queryRunner: QueryRunner,
    statement: FastStatement,
    parameters: unknown[],
    definition: AggregateDefinition,
    aggregateId: unknown,
    transaction: 'autocommit' | 'own' | 'caller',
  ): Promise<Record<string, unknown> | undefined> {
    const logger = this.dataSource.logger;
    const client = (await queryRunner.connect()) as { query(config: object): Promise<{ rows: Record<string, unknown>[] }> };
    for (let attempt = 1; ; attempt += 1) {
      const named = this.options.statements === 'named';
      logger.logQuery(statement.text, parameters, queryRunner);
      const started = Date.now();
      try {
        const config = named ? { name: statementName(statement.text), text: statement.text, values: parameters } : { text: statement.text, values: parameters };
        const result = await client.query(config);
        const slowAfter = this.dataSource.options.maxQueryExecutionTime;
        if (slowAfter && Date.now() - started > slowAfter) logger.logQuerySlow(Date.now() - started, statement.text, parameters, queryRunner);
        return result.rows[0];
      } catch (error) {
        logger.logQueryError(error as Error, statement.text, parameters, queryRunner);
        if ((error as { code?: string }).code === '0A000' && named) {
          // "cached plan must not change result type": a migration changed the table under
          // this connection's prepared statement. A new name is prepared afresh everywhere.
          retireStatementName(statement.text);
          if (transaction === 'autocommit' && attempt === 1) continue;
          throw new StalePlan(new QueryFailedError(statement.text, parameters, error as Error));
        }
        if (transaction === 'autocommit' && isConnectionLoss(error)) {
          // The statement is its own transaction: it may have committed just before the loss.
          throw new ConnectionLostError(definition.name, aggregateId, error, true);
        }
        throw new QueryFailedError(statement.text, parameters, error as Error);
      }
    }
  }

  /** Fills in the event from the returned row; the aggregate's stored columns and outbox rows. */
  #take(event: AggregateEvent, definition: AggregateDefinition, statement: FastStatement, row: Record<string, unknown>): Written {
    const stored = returnedState(definition, statement, row);
    event.aggregateId = stored.get(definition.primaryColumn);
    event.version = Number(stored.get(definition.versionColumn));
    event.id = Number(row.event_id);
    event.position = Number(row.event_position);
    event.txId = Number(row.event_tx_id);
    event.schemaVersion = row.event_schema_version as number;
    return { stored, outbox: (row.outbox as OutboxRow[] | undefined) ?? [] };
  }

  /** An event's type, data, metadata, createdAt and schema version, as its row stores them. */
  #storedValues(event: AggregateEvent): [type: unknown, data: unknown, metadata: unknown, createdAt: Date, schemaVersion: number] {
    const driver = this.dataSource.driver;
    const metadata = this.dataSource.getMetadata(event.constructor);
    const column = (property: string) => metadata.findColumnWithPropertyName(property)!;
    return [
      metadata.discriminatorValue,
      driver.preparePersistentValue(event.data, column('data')),
      driver.preparePersistentValue(event.metadata, column('metadata')),
      event.createdAt,
      event.schemaVersion,
    ];
  }
}
