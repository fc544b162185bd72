import { DelayedError, UnrecoverableError, type Processor } from 'bullmq';
import type { DataSource, EntityManager } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { ConcurrencyError } from '../errors/concurrency-error';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { isConnectionLoss } from '../errors/connection-loss';
import { ConnectionLostError } from '../errors/connection-lost-error';
import { ReactorDeadlockError } from '../errors/reactor-deadlock-error';
import { ReactorError } from '../errors/reactor-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { withMetadata } from '../events/metadata-scope';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { causationMetadata } from './causation';
import type { Dispatcher } from './dispatcher';
import { deleteOutboxRowByJobKey, deleteOutboxRows, insertOutboxRows, markOutboxRowsEnqueued, type OutboxRow } from './outbox';
import type { ReactorJobData, ReactorQueue } from './reactor-queue';
import { inTrigger } from './trigger-scope';
import { withTimeout } from './with-timeout';
import { instrumentationOf, secondsSince, traceContextIn, type InstrumentationSpan, type TelemetryAttributes } from '../observability/instrumentation';

/** Rows handed to the queue in one go at most: one addBulk, one DELETE. */
const MAX_DELIVERY = 500;

/**
 * What happens around an event once its row exists: outbox rows for its async reactors and its
 * trigger reactors inside the transaction; after the outermost commit, the hand-over of the
 * outbox rows to the queue; in a worker, the async reactor call.
 */
export class Reactions {
  readonly #dispatcher: Dispatcher;
  readonly #queue: ReactorQueue | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #deliveries = new Set<Promise<void>>();
  /** Committed rows not handed over yet, and the hand-over under way. */
  readonly #waiting: OutboxRow[] = [];
  #delivering: Promise<void> | undefined;
  readonly #keepOutboxUntil: 'enqueued' | 'completed';

  constructor(dispatcher: Dispatcher, queue: ReactorQueue | undefined, onError: (error: unknown) => void, keepOutboxUntil: 'enqueued' | 'completed' = 'enqueued') {
    this.#dispatcher = dispatcher;
    this.#queue = queue;
    this.#onError = onError;
    this.#keepOutboxUntil = keepOutboxUntil;
  }

  /** In the event's transaction, right after its INSERT. Returns the outbox rows written. */
  async afterInsert(manager: EntityManager, definition: AggregateDefinition, event: AggregateEvent): Promise<OutboxRow[]> {
    const table = definition.eventsMetadata.tableName;
    const reactors = this.asyncReactorNames(event);
    const outbox = reactors.length ? await insertOutboxRows(manager, { table, id: event.id, position: event.position, type: event.type }, reactors) : [];
    await this.runTriggers(manager, definition, event);
    return outbox;
  }

  /** The async reactors an event's outbox rows are for. */
  asyncReactorNames(event: AggregateEvent): string[] {
    return this.#dispatcher.reactorsFor(event, 'async').map((binding) => binding.name);
  }

  hasTriggers(event: AggregateEvent): boolean {
    return this.#dispatcher.reactorsFor(event, 'trigger').length > 0;
  }

  /** The event's trigger reactors, in its transaction (`manager`), after its row is written. */
  async runTriggers(manager: EntityManager, definition: AggregateDefinition, event: AggregateEvent): Promise<void> {
    const table = definition.eventsMetadata.tableName;
    // Read now: a connection lost while a reactor runs puts the event's fields back at once.
    const aggregateId = event.aggregateId;
    const instrumentation = instrumentationOf(manager.connection);
    for (const binding of this.#dispatcher.reactorsFor(event, 'trigger')) {
      try {
        await instrumentation.span(`es.reactor ${binding.name}`, reactorAttributes(binding.name, 'trigger', table, event), () =>
          inTrigger(binding.name, () =>
            withMetadata(causationMetadata(table, event), () =>
              this.#dispatcher.invoke(binding, event, { manager, reactor: binding.name, mode: 'trigger', attempt: 1 }),
            ),
          ),
        );
      } catch (error) {
        // A conflict stays a conflict and a lost connection stays one, so that callers (and
        // commands) can retry them.
        if (error instanceof ConcurrencyError || error instanceof ConnectionLostError || error instanceof ReactorDeadlockError) throw error;
        if (isConnectionLoss(error)) throw new ConnectionLostError(definition.name, aggregateId, error);
        throw new ReactorError(binding.name, event.type, aggregateId, error);
      }
    }
  }

  /**
   * After the outermost COMMIT: hands the rows to the queue and deletes them, without making the
   * caller wait. Rows committed while a hand-over is under way go together in the next one (one
   * `addBulk` and one DELETE for all of them), so a busy writer pays for fewer round trips than it
   * writes events. A failure leaves the rows for the relay.
   */
  deliver(dataSource: DataSource, rows: OutboxRow[]): void {
    if (!this.#queue || rows.length === 0) return;
    this.#waiting.push(...rows);
    if (this.#delivering) return;
    const queue = this.#queue;
    const delivery = instrumentationOf(dataSource)
      .span('es.handover', { 'typeorm_es.queue': queue.name }, (span) => this.#deliverWaiting(dataSource, queue, span), { kind: 'producer' })
      .catch(() => undefined);
    this.#delivering = delivery;
    this.#deliveries.add(delivery);
    void delivery.finally(() => {
      this.#deliveries.delete(delivery);
      this.#delivering = undefined;
    });
  }

  async #deliverWaiting(dataSource: DataSource, queue: ReactorQueue, span: InstrumentationSpan): Promise<void> {
    let jobs = 0;
    while (this.#waiting.length > 0) {
      const rows = this.#waiting.splice(0, MAX_DELIVERY);
      try {
        await withTimeout(queue.add(rows), 5000, 'handing reactor jobs to the queue');
        await settleOutboxRows(dataSource.manager, rows, this.#keepOutboxUntil);
        jobs += rows.length;
      } catch (error) {
        this.#onError(error);
        // The queue is not taking jobs: everything waiting stays in the outbox for the relay,
        // rather than piling up here behind one timeout after another.
        this.#waiting.length = 0;
        span.setAttributes({ 'typeorm_es.jobs': jobs, 'typeorm_es.left_to_relay': rows.length });
        throw error;
      }
    }
    span.setAttributes({ 'typeorm_es.jobs': jobs });
  }

  /** Hand-overs still in progress, and rows waiting for one. */
  get deliveriesInProgress(): number {
    return this.#deliveries.size + this.#waiting.length;
  }

  /** Waits for hand-overs in progress, at most `ms` milliseconds. */
  async settle(ms: number): Promise<void> {
    await withTimeout(Promise.allSettled([...this.#deliveries]), ms, 'pending reactor hand-overs').catch(() => undefined);
  }

  /**
   * The BullMQ processor of a worker: checks the job against this database (signature, event row,
   * reactor registration), loads the event and calls its reactor. A job that fails a check is
   * refused as unrecoverable. A database that cannot be reached does not use up the job's
   * attempts: the job is delayed and tried again until the database is back.
   */
  processor(dataSource: DataSource, registry: EventSourcingRegistry): Processor<ReactorJobData> {
    const instrumentation = instrumentationOf(dataSource);
    return async (job, token) => {
      const queue = this.#queue!;
      const verified = queue.verify(job.id, job.data);
      if ('refused' in verified) throw new UnrecoverableError(verified.refused);
      const { table, id, reactor, position, type, key } = verified.data;
      const binding = this.#dispatcher.asyncReactor(reactor);
      if (!binding) throw new UnrecoverableError(`no async reactor named '${reactor}' is registered with the dispatcher (job ${job.id})`);
      const definition = registry.forEventsTable(table);
      if (!definition) throw new UnrecoverableError(`'${table}' is not an events table of this DataSource (job ${job.id})`);
      try {
        const event = await dataSource.manager.findOne<AggregateEvent>(definition.eventsMetadata.target, { where: { id } });
        if (!event) throw new UnrecoverableError(`${table} row ${id} does not exist (job ${job.id})`);
        // A job added before its type was renamed names the alias the row is stored under.
        if (event.position !== position || !getMetadataStorage().storedNamesOf(event.constructor).includes(type)) {
          throw new UnrecoverableError(
            `${table} row ${id} is not the event job ${job.id} was added for (it is ${event.type} at position ${event.position}, the job names ${type} at position ${position}): the table was reset or restored`,
          );
        }
        if (!this.#dispatcher.reactorsFor(event, 'async').some((candidate) => candidate.name === reactor)) {
          throw new UnrecoverableError(`reactor '${reactor}' is not registered for ${event.type} (job ${job.id})`);
        }
        const attempt = job.attemptsMade + 1;
        const attributes = { ...reactorAttributes(reactor, 'async', table, event), 'typeorm_es.job.id': job.id, 'typeorm_es.job.attempt': attempt };
        // A child of the span that wrote the event: from the job's data (the hand-over put it
        // there) or, for jobs the relay added, from the event's metadata.
        const parent = traceContextIn(job.data) ?? traceContextIn(event.metadata);
        const started = performance.now();
        try {
          await instrumentation.span(
            `es.reactor ${reactor}`,
            attributes,
            () =>
              withMetadata(causationMetadata(table, event), () =>
                this.#dispatcher.invoke(binding, event, { manager: dataSource.manager, reactor, mode: 'async', attempt, job }),
              ),
            { kind: 'consumer', parent },
          );
          instrumentation.record('typeorm_es.reactor.job.duration', secondsSince(started), { 'typeorm_es.reactor': reactor, 'typeorm_es.outcome': 'completed' });
        } catch (error) {
          instrumentation.record('typeorm_es.reactor.job.duration', secondsSince(started), { 'typeorm_es.reactor': reactor, 'typeorm_es.outcome': 'failed' });
          instrumentation.count('typeorm_es.reactor.job.failures', 1, { 'typeorm_es.reactor': reactor });
          throw error;
        }
        if (this.#keepOutboxUntil === 'completed') await deleteOutboxRowByJobKey(dataSource.manager, key);
      } catch (error) {
        if (!isConnectionLoss(error) || token === undefined) throw error;
        // The database is away: try again later without counting an attempt (a failover or a
        // restart may take longer than every retry of the job together).
        const waited = Math.max(0, (job.attemptsStarted ?? 1) - job.attemptsMade - 1);
        await job.moveToDelayed(Date.now() + Math.min(500 * 2 ** waited, 10_000), token);
        throw new DelayedError();
      }
    };
  }
}

/** What a reactor's span says about the call. */
function reactorAttributes(reactor: string, mode: 'trigger' | 'async', table: string, event: AggregateEvent): TelemetryAttributes {
  return {
    'typeorm_es.reactor': reactor,
    'typeorm_es.reactor.mode': mode,
    'typeorm_es.event.type': event.type,
    'typeorm_es.event.table': table,
    'typeorm_es.event.id': event.id,
    'typeorm_es.aggregate.id': String(event.aggregateId),
  };
}

/** Once jobs are in the queue: their outbox rows are deleted, or kept and marked until the jobs complete. */
export async function settleOutboxRows(manager: EntityManager, rows: readonly OutboxRow[], keepUntil: 'enqueued' | 'completed'): Promise<void> {
  const ids = rows.map((row) => row.id);
  if (keepUntil === 'completed') await markOutboxRowsEnqueued(manager, ids);
  else await deleteOutboxRows(manager, ids);
}
