import { UnrecoverableError, type Processor } from 'bullmq';
import type { DataSource, EntityManager } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { ConcurrencyError } from '../errors/concurrency-error';
import { isConnectionLoss } from '../errors/connection-loss';
import { ConnectionLostError } from '../errors/connection-lost-error';
import { ReactorDeadlockError } from '../errors/reactor-deadlock-error';
import { ReactorError } from '../errors/reactor-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { withMetadata } from '../events/metadata-scope';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { causationMetadata } from './causation';
import type { Dispatcher } from './dispatcher';
import { deleteOutboxRows, insertOutboxRows, type OutboxRow } from './outbox';
import type { ReactorJobData, ReactorQueue } from './reactor-queue';
import { inTrigger } from './trigger-scope';
import { withTimeout } from './with-timeout';

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

  constructor(dispatcher: Dispatcher, queue: ReactorQueue | undefined, onError: (error: unknown) => void) {
    this.#dispatcher = dispatcher;
    this.#queue = queue;
    this.#onError = onError;
  }

  /** In the event's transaction, right after its INSERT. Returns the outbox rows written. */
  async afterInsert(manager: EntityManager, definition: AggregateDefinition, event: AggregateEvent): Promise<OutboxRow[]> {
    const table = definition.eventsMetadata.tableName;
    const asyncReactors = this.#dispatcher.reactorsFor(event, 'async');
    const outbox = asyncReactors.length
      ? await insertOutboxRows(manager, { table, id: event.id, position: event.position, type: event.type }, asyncReactors.map((binding) => binding.name))
      : [];
    for (const binding of this.#dispatcher.reactorsFor(event, 'trigger')) {
      try {
        await inTrigger(binding.name, () =>
          withMetadata(causationMetadata(table, event), () =>
            this.#dispatcher.invoke(binding, event, { manager, reactor: binding.name, mode: 'trigger', attempt: 1 }),
          ),
        );
      } catch (error) {
        // A conflict stays a conflict and a lost connection stays one, so that callers (and
        // commands) can retry them.
        if (error instanceof ConcurrencyError || error instanceof ConnectionLostError || error instanceof ReactorDeadlockError) throw error;
        if (isConnectionLoss(error)) throw new ConnectionLostError(definition.name, event.aggregateId, error);
        throw new ReactorError(binding.name, event.type, event.aggregateId, error);
      }
    }
    return outbox;
  }

  /**
   * After the outermost COMMIT: hands the rows to the queue and deletes them, without making the
   * caller wait. A failure leaves the rows for the relay.
   */
  deliver(dataSource: DataSource, rows: OutboxRow[]): void {
    if (!this.#queue || rows.length === 0) return;
    const queue = this.#queue;
    const delivery = (async () => {
      try {
        await withTimeout(queue.add(rows), 5000, 'handing reactor jobs to the queue');
        await deleteOutboxRows(dataSource.manager, rows.map((row) => row.id));
      } catch (error) {
        this.#onError(error);
      }
    })();
    this.#deliveries.add(delivery);
    void delivery.finally(() => this.#deliveries.delete(delivery));
  }

  /** Hand-overs still in progress. */
  get deliveriesInProgress(): number {
    return this.#deliveries.size;
  }

  /** Waits for hand-overs in progress, at most `ms` milliseconds. */
  async settle(ms: number): Promise<void> {
    await withTimeout(Promise.allSettled([...this.#deliveries]), ms, 'pending reactor hand-overs').catch(() => undefined);
  }

  /** The BullMQ processor of a worker: loads the event by reference and calls its reactor. */
  processor(dataSource: DataSource, registry: EventSourcingRegistry): Processor<ReactorJobData> {
    return async (job) => {
      const { table, id, reactor } = job.data;
      // The job's table and id name a row of the database that added it: never run it against
      // this database's row of the same id.
      if (this.#queue && !this.#queue.ownsJob(job.id)) {
        throw new UnrecoverableError(
          `job ${job.id} was added by another database than this worker's (${this.#queue.identity}): give each database a queue name of its own`,
        );
      }
      const binding = this.#dispatcher.asyncReactor(reactor);
      if (!binding) throw new UnrecoverableError(`no async reactor named '${reactor}' is registered with the dispatcher (job ${job.id})`);
      const definition = registry.forEventsTable(table);
      if (!definition) throw new UnrecoverableError(`'${table}' is not an events table of this DataSource (job ${job.id})`);
      const event = await dataSource.manager.findOne<AggregateEvent>(definition.eventsMetadata.target, { where: { id } });
      if (!event) throw new UnrecoverableError(`${table} row ${id} does not exist (job ${job.id})`);
      await withMetadata(causationMetadata(table, event), () =>
        this.#dispatcher.invoke(binding, event, { manager: dataSource.manager, reactor, mode: 'async', attempt: job.attemptsMade + 1, job }),
      );
    };
  }
}
