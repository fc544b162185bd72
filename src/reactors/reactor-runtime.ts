import type { Processor, Worker } from 'bullmq';
import type { DataSource } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import type { WrittenEvent } from '../events/transaction-log';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { IDENTITY_TABLE } from '../schema/event-sourcing-schema';
import type { Dispatcher } from './dispatcher';
import { countOutboxRows } from './outbox';
import { OutboxRelay } from './outbox-relay';
import { Reactions } from './reactions';
import { ReactorQueue, type ReactorJobData, type ReactorWorkerOptions } from './reactor-queue';
import type { ReactorQueueOptions, RelayOptions } from './reactor-queue-options';
import { withTimeout } from './with-timeout';

/**
 * Everything async reactors need in one process, and its lifecycle: the queue, the after-commit
 * hand-over, the workers and relays this process started.
 */
export class ReactorRuntime {
  readonly reactions: Reactions;
  readonly #dataSource: DataSource;
  readonly #registry: EventSourcingRegistry;
  readonly #queue: ReactorQueue | undefined;
  readonly #queueOptions: ReactorQueueOptions;
  readonly #onError: (error: unknown) => void;
  readonly #workers = new Set<Worker<ReactorJobData>>();
  readonly #relays = new Set<OutboxRelay>();
  /** Reactor calls running in this process's workers. */
  readonly #running = new Set<Promise<unknown>>();

  private constructor(
    dataSource: DataSource,
    registry: EventSourcingRegistry,
    dispatcher: Dispatcher,
    queue: ReactorQueue | undefined,
    queueOptions: ReactorQueueOptions,
    onError: (error: unknown) => void,
  ) {
    this.#dataSource = dataSource;
    this.#registry = registry;
    this.#queue = queue;
    this.#queueOptions = queueOptions;
    this.#onError = onError;
    this.reactions = new Reactions(dispatcher, queue, onError);
  }

  static async create(
    dataSource: DataSource,
    registry: EventSourcingRegistry,
    dispatcher: Dispatcher,
    queueOptions: ReactorQueueOptions | undefined,
    onError: (error: unknown) => void,
  ): Promise<ReactorRuntime> {
    if (!queueOptions) {
      if (dispatcher.hasAsyncReactors) {
        throw new EventSourcingConfigError('the dispatcher has async reactors, so EventSourcing.attach needs queue options (e.g. { queue: { connection: { host, port } } })');
      }
      return new ReactorRuntime(dataSource, registry, dispatcher, undefined, {}, onError);
    }
    let identity: string;
    try {
      [{ id: identity }] = await dataSource.query(`SELECT id::text AS id FROM ${IDENTITY_TABLE}`);
    } catch {
      throw new EventSourcingConfigError(
        `table ${IDENTITY_TABLE} is missing: create the library's schema (synchronize, es.schema.create() or eventSourcingMigration) before attaching with a queue`,
      );
    }
    const queue = new ReactorQueue(queueOptions, identity, dispatcher, dataSource, (error) => onError(error));
    return new ReactorRuntime(dataSource, registry, dispatcher, queue, queueOptions, onError);
  }

  /** The BullMQ queue async reactor jobs go to. */
  get queue(): ReactorQueue {
    if (!this.#queue) throw new EventSourcingConfigError('no queue is configured: pass { queue } to EventSourcing.attach');
    return this.#queue;
  }

  /** After the outermost COMMIT. */
  committed(written: readonly WrittenEvent[]): void {
    const rows = written.flatMap((entry) => entry.outbox ?? []);
    if (rows.length > 0) this.reactions.deliver(this.#dataSource, rows);
  }

  worker(options: ReactorWorkerOptions): Worker<ReactorJobData> {
    const processor = this.reactions.processor(this.#dataSource, this.#registry);
    const tracked: Processor<ReactorJobData> = (...args) => {
      const run = processor(...args);
      this.#running.add(run);
      void run.finally(() => this.#running.delete(run)).catch(() => undefined);
      return run;
    };
    const worker = this.queue.createWorker(tracked, options);
    worker.on('error', (error) => this.#onError(error));
    this.#workers.add(worker);
    if (options.relay !== false) this.relay();
    return worker;
  }

  relay(options: RelayOptions = {}): OutboxRelay {
    const relay = new OutboxRelay(this.#dataSource, this.queue, { ...this.#queueOptions.relay, ...options }, this.#onError).start();
    this.#relays.add(relay);
    return relay;
  }

  /** Outbox rows not yet in the queue, hand-overs in progress, and jobs not finished. */
  async pendingJobs(): Promise<number> {
    if (!this.#queue) return 0;
    const [outbox, jobs] = await Promise.all([countOutboxRows(this.#dataSource.manager), this.#queue.unfinishedJobs()]);
    return outbox + jobs + this.reactions.deliveriesInProgress;
  }

  /** Closes workers (letting running jobs finish), relays and the queue; every step runs even if one fails. */
  async close(): Promise<void> {
    const steps: Promise<unknown>[] = [
      ...[...this.#workers].map((worker) => this.#closeWorker(worker)),
      ...[...this.#relays].map((relay) => relay.close()),
    ];
    const results = await Promise.allSettled(steps);
    this.#workers.clear();
    this.#relays.clear();
    await this.reactions.settle(2000);
    if (this.#queue) {
      const queue = this.#queue;
      // While Redis is unreachable a graceful close never finishes: disconnect instead. BullMQ's
      // disconnect() waits for an event a reconnecting ioredis client never emits
      // (taskforcesh/bullmq#4656), so the Redis client is dropped without waiting.
      await withTimeout(queue.close(), 2000, 'closing the reactor queue').catch(async () => {
        if (this.#queueOptions.backend === 'postgres') await queue.queue.disconnect().catch(() => undefined);
        else (await withTimeout(queue.queue.getBackend().client, 250, 'connecting to Redis').catch(() => undefined))?.disconnect();
      });
    }
    for (const result of results) if (result.status === 'rejected') this.#onError(result.reason);
  }

  /**
   * Closes a worker, its running jobs finishing first. While Redis does not answer, BullMQ's
   * graceful close never ends: it waits for an event a reconnecting ioredis client never emits
   * (taskforcesh/bullmq#4656). Then the reactor calls running here finish and the worker closes
   * with force; a job it could not mark completed stays active in Redis and runs again elsewhere
   * once its lock expires, as after a crash.
   */
  async #closeWorker(worker: Worker<ReactorJobData>): Promise<void> {
    if (this.#queueOptions.backend === 'postgres' || (await redisAnswers(worker))) return worker.close();
    await Promise.allSettled([...this.#running]);
    await worker.close(true);
  }
}

/** Whether a worker's Redis connection is up right now (never connected counts as down). */
async function redisAnswers(worker: Worker<ReactorJobData>): Promise<boolean> {
  const client = await withTimeout(worker.getBackend().client, 250, 'connecting to Redis').catch(() => undefined);
  return client?.status === 'ready';
}
