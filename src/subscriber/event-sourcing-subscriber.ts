import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  EntityMetadata,
  ObjectLiteral,
  QueryRunner,
  EntitySubscriberInterface,
  InsertEvent,
  LoadEvent,
  RemoveEvent,
  SoftRemoveEvent,
  TransactionCommitEvent,
  TransactionRollbackEvent,
  UpdateEvent,
} from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import { directlyWrittenColumns } from '../aggregates/direct-writes';
import { DirectWriteError } from '../errors/direct-write-error';
import { ConcurrencyError } from '../errors/concurrency-error';
import { isConnectionLoss } from '../errors/connection-loss';
import { ConnectionLostError } from '../errors/connection-lost-error';
import { EventAlreadyWrittenError } from '../errors/event-already-written-error';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { ReactorDeadlockError } from '../errors/reactor-deadlock-error';
import { ImmutableEventError } from '../errors/immutable-event-error';
import { UnknownEventTypeError } from '../errors/unknown-event-type-error';
import { AggregateEvent, numberReturnedValues } from '../events/aggregate-event';
import type { TransactionLog, WrittenEvent } from '../events/transaction-log';
import { pendingWriteOf } from '../events/pending-write';
import { writeEvent } from '../events/write-path';
import { currentTrigger } from '../reactors/trigger-scope';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import type { Reactions } from '../reactors/reactions';
import { tableSql } from '../schema/table-sql';
import { instrumentationOf } from '../observability/instrumentation';
import { forgetStoredState, rememberStoredState } from '../aggregates/stored-state';

/**
 * The TypeORM edge of the library: turns TypeORM's entity and transaction events into calls to
 * the write path and the transaction log. One instance per attached DataSource.
 */
export class EventSourcingSubscriber implements EntitySubscriberInterface {
  constructor(
    private readonly registry: EventSourcingRegistry,
    private readonly log: TransactionLog,
    private readonly onCommitted: (written: WrittenEvent[]) => void,
    private readonly reactions: Reactions,
    private readonly onDirectWrite: (warning: DirectWriteError) => void,
    /** `fastPath: false` writes every event under the row lock, `manager.save` included. */
    private readonly fromStoredState = true,
  ) {}

  /** The last piece of work queued on each connection; see #serial. */
  readonly #queued = new WeakMap<QueryRunner, Promise<void>>();
  /** The connection whose queued work is running in this async context. */
  readonly #running = new AsyncLocalStorage<QueryRunner>();

  beforeInsert(event: InsertEvent<any>): Promise<void> | void {
    const aggregate = this.registry.forAggregateMetadata(event.metadata);
    if (aggregate) return this.#guardDirectWrite(aggregate, 'insert', event.entity, []);
    const definition = this.registry.forEventsMetadata(event.metadata);
    if (!definition) return;
    const entity = event.entity;
    // Refusals go through the connection's queue like writes: TypeORM stops waiting for the other
    // entities of a save([...]) at the first rejection and rolls back, and a write of an earlier
    // entity still running would then go on outside the transaction.
    if (!(entity instanceof AggregateEvent)) {
      // A plain object would be stored as is: no apply, no aggregate row, any version.
      const refusal = new EventSourcingConfigError(
        `${definition.eventsMetadata.tableName}: an event is written by saving an instance of its event class (built with build()), not a plain object`,
      );
      return this.#serial(event.queryRunner, () => Promise.reject(refusal));
    }
    // Claimed before anything is awaited, so that a second save of the same instance, on another
    // connection or later in the same save([...]), finds it taken.
    const pending = pendingWriteOf(entity);
    if (pending.state) {
      const refusal = new EventAlreadyWrittenError(entity.type, pending.state);
      return this.#serial(event.queryRunner, () => Promise.reject(refusal));
    }
    pending.state = 'in flight';
    pending.awaitingCommit = false;
    const outer = this.#running.getStore();
    const write = this.#serial(event.queryRunner, async () => {
      this.#assertNoSelfDeadlock(outer, event.queryRunner, definition, entity);
      const attributes = { 'typeorm_es.aggregate': definition.name, 'typeorm_es.event.type': entity.type, 'typeorm_es.path': 'locked' };
      await instrumentationOf(event.manager.connection).span('es.write', attributes, async (span) => {
        await writeEvent(event.manager, definition, entity, this.log, this.fromStoredState);
        span.setAttributes({ 'typeorm_es.aggregate.id': String(entity.aggregateId), 'typeorm_es.event.version': entity.version });
      });
    });
    // Also when the work never ran because work queued before it failed.
    return write.catch((error: unknown) => {
      pending.state = undefined;
      throw asConnectionLost(error, definition, entity);
    });
  }

  afterInsert(event: InsertEvent<any>): Promise<void> | void {
    if (this.registry.forAggregateMetadata(event.metadata)) {
      // Written by TypeORM, not read back: what the row holds is not known.
      if (event.entity) forgetStoredState(event.entity);
      return;
    }
    const definition = this.registry.forEventsMetadata(event.metadata);
    const entity = event.entity;
    if (!definition || !(entity instanceof AggregateEvent)) return;
    numberReturnedValues(entity);
    return this.#serial(event.queryRunner, async () => {
      try {
        const outbox = await this.reactions.afterInsert(event.manager, definition, entity);
        if (outbox.length > 0) this.log.attachOutbox(event.queryRunner, entity, outbox);
        pendingWriteOf(entity).awaitingCommit = true;
      } catch (error) {
        throw asConnectionLost(error, definition, entity);
      }
    });
  }

  beforeUpdate(event: UpdateEvent<any>): void {
    const aggregate = this.registry.forAggregateMetadata(event.metadata);
    if (aggregate) return this.#guardDirectWrite(aggregate, 'update', event.entity as ObjectLiteral | undefined, event.updatedColumns);
    this.#refuse(event.metadata, 'update', event.entity ?? event.databaseEntity);
  }

  afterUpdate(event: UpdateEvent<any>): void {
    if (event.entity && this.registry.forAggregateMetadata(event.metadata)) forgetStoredState(event.entity);
  }

  beforeRemove(event: RemoveEvent<any>): void {
    this.#refuse(event.metadata, 'remove', event.entity ?? event.databaseEntity);
  }

  beforeSoftRemove(event: SoftRemoveEvent<any>): void {
    this.#refuse(event.metadata, 'remove', event.entity ?? event.databaseEntity);
  }

  afterLoad(entity: any, event?: LoadEvent<any>): Promise<never> | void {
    const metadata = event?.metadata;
    if (!metadata) return;
    const eventsOwner = this.registry.forEventsMetadata(metadata);
    if (eventsOwner && entity instanceof AggregateEvent && entity.constructor === eventsOwner.eventsMetadata.target) {
      return this.#unknownType(event, eventsOwner.eventsMetadata, entity);
    }
    const aggregate = this.registry.forAggregateMetadata(metadata);
    if (aggregate) {
      rememberStoredState(aggregate, entity);
      if (event.queryRunner?.isTransactionActive) this.log.noteLoad(event.queryRunner, entity);
      for (const relation of metadata.oneToManyRelations) {
        const events = relation.getEntityValue(entity);
        if (Array.isArray(events) && this.registry.forEventsMetadata(relation.inverseEntityMetadata)) {
          events.sort((a: AggregateEvent, b: AggregateEvent) => a.version - b.version);
        }
      }
    }
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    // Fires on RELEASE SAVEPOINT too; the log hands events over only after the outermost COMMIT.
    const committed = this.log.committed(event.queryRunner);
    if (committed.length > 0) this.onCommitted(committed);
  }

  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    this.log.rollingBack(event.queryRunner);
  }

  /**
   * TypeORM treats the discriminator as a virtual column and never hands its value to the entity,
   * so the stored type of a row no class claims is read back to name it in the error.
   */
  async #unknownType(event: LoadEvent<any>, metadata: EntityMetadata, entity: AggregateEvent): Promise<never> {
    let stored: string | undefined;
    try {
      const driver = event.manager.connection.driver;
      const table = tableSql(driver, metadata);
      const type = driver.escape(metadata.discriminatorColumn!.databaseName);
      const id = driver.escape(metadata.primaryColumns[0].databaseName);
      const rows: { type?: string }[] = await event.manager.query(`SELECT ${type} AS "type" FROM ${table} WHERE ${id} = $1`, [entity.id]);
      stored = rows[0]?.type;
    } catch {
      // An aborted transaction cannot run the query: report what is known.
    }
    throw new UnknownEventTypeError(metadata.tableName, entity.id, stored ?? entity.type);
  }

  /**
   * Runs `work` in the connection's queue, as the subscriber runs its own writes: for the
   * trigger reactors of an event the fast path wrote, so that what they write is ordered and
   * checked the same way.
   */
  runOnConnection(queryRunner: QueryRunner, work: () => Promise<void>): Promise<void> {
    return this.#serial(queryRunner, work);
  }

  /**
   * TypeORM runs the listeners of one save([...]) concurrently, on one connection. Work is queued
   * per connection so that events of one aggregate get consecutive versions, and a failure stops
   * the work queued behind it (it would otherwise go on after TypeORM's ROLLBACK, outside the
   * transaction). Work started by queued work (a trigger reactor saving an event) runs at once.
   */
  #serial(queryRunner: QueryRunner, work: () => Promise<void>): Promise<void> {
    if (this.#running.getStore() === queryRunner) return work();
    const run = () => this.#running.run(queryRunner, work);
    const previous = this.#queued.get(queryRunner);
    const current = previous ? previous.then(run) : run();
    this.#queued.set(queryRunner, current);
    const forget = () => {
      if (this.#queued.get(queryRunner) === current) this.#queued.delete(queryRunner);
    };
    current.then(forget, forget);
    return current;
  }

  /**
   * A trigger reactor runs in its event's transaction (`outer`). If it writes an aggregate that
   * transaction has locked through another connection (`dataSource.manager` instead of
   * `ctx.manager`), the write would wait for a lock that is released only when the reactor
   * returns: PostgreSQL sees no deadlock, since the holder is idle in transaction.
   */
  #assertNoSelfDeadlock(outer: QueryRunner | undefined, queryRunner: QueryRunner, definition: AggregateDefinition, event: AggregateEvent): void {
    if (!outer || outer === queryRunner) return;
    const caller = pendingWriteOf(event).aggregate as ObjectLiteral | undefined;
    const id = caller ? definition.idOf(caller) : event.aggregateId;
    if (id !== undefined && id !== null && this.log.holds(outer, definition, id)) {
      throw new ReactorDeadlockError(currentTrigger() ?? '(unknown)', definition.name, id);
    }
  }

  /** `@Aggregate({ directWrites })`: TypeORM writes of sourced columns that bypass events. */
  #guardDirectWrite(definition: AggregateDefinition, operation: 'insert' | 'update', entity: ObjectLiteral | undefined, changed: readonly ColumnMetadata[]): void {
    if (definition.directWrites === 'allow') return;
    const columns = directlyWrittenColumns(definition, operation, entity, changed);
    if (columns.length === 0) return;
    const id = entity ? definition.primaryColumn.getEntityValue(entity) : undefined;
    const error = new DirectWriteError(definition.name, id, operation, columns.map((column) => column.propertyName));
    if (definition.directWrites === 'reject') throw error;
    this.onDirectWrite(error);
  }

  #refuse(metadata: EntityMetadata, operation: 'update' | 'remove', entity: { id?: unknown } | undefined): void {
    const definition = this.registry.forEventsMetadata(metadata);
    if (definition) throw new ImmutableEventError(definition.eventsMetadata.tableName, operation, entity?.id);
  }
}

/** A lost connection, whichever statement met it, is reported as such (and is retryable). */
function asConnectionLost(error: unknown, definition: AggregateDefinition, event: AggregateEvent): unknown {
  if (error instanceof ConnectionLostError || error instanceof ConcurrencyError || !isConnectionLoss(error)) return error;
  const caller = pendingWriteOf(event).aggregate as ObjectLiteral | undefined;
  return new ConnectionLostError(definition.name, caller ? definition.idOf(caller) : event.aggregateId, error);
}
