import type { Processor, Queue, Worker } from 'bullmq';
import type { DataSource } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { EventSourcingError } from '../errors/event-sourcing-error';
import type { WrittenEvent } from '../events/transaction-log';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { IDENTITY_TABLE, libraryObject } from '../schema/event-sourcing-schema';
import type { Dispatcher } from './dispatcher';
import { countOutboxRows } from './outbox';
import { OutboxRelay } from './outbox-relay';
import { Reactions } from './reactions';
import { ReactorQueue, type ReactorJobData, type ReactorWorkerOptions } from './reactor-queue';
import type { ReactorQueueOptions, RelayOptions } from './reactor-queue-options';
import { checkRedisQueue } from './redis-requirements';
import { withTimeout } from './with-timeout';
import { traceContextIn } from '../observability/instrumentation';

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
  #releaseQueueName: () => Promise<void> = async () => undefined;

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
    this.reactions = new Reactions(dispatcher, queue, onError, queueOptions.keepOutboxUntil ?? 'enqueued');
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
    let database: { identity: string; secret: string };
    const identityTable = libraryObject(dataSource.driver, IDENTITY_TABLE);
    try {
      [database] = await dataSource.query(`SELECT id::text AS identity, secret FROM ${identityTable}`);
    } catch {
      throw new EventSourcingConfigError(
        `table ${identityTable} is missing or out of date: create the library's schema (synchronize, es.schema.create() or eventSourcingMigration) before attaching with a queue`,
      );
    }
    const queue = new ReactorQueue(queueOptions, database, dispatcher, dataSource, (error) => onError(error));
    const runtime = new ReactorRuntime(dataSource, registry, dispatcher, queue, queueOptions, onError);
    if (queueOptions.backend !== 'postgres') {
      try {
        runtime.#releaseQueueName = await checkRedisQueue(queue, queueOptions, onError);
      } catch (error) {
        await runtime.close();
        throw error;
      }
    }
    return runtime;
  }

  /** The queue, when one is configured. */
  get configuredQueue(): ReactorQueue | undefined {
    return this.#queue;
  }

  /** The BullMQ queue async reactor jobs go to. */
  get queue(): ReactorQueue {
    if (!this.#queue) throw new EventSourcingConfigError('no queue is configured: pass { queue } to EventSourcing.attach');
    return this.#queue;
  }

  /** After the outermost COMMIT. */
  committed(written: readonly WrittenEvent[]): void {
    const rows = written.flatMap((entry) => {
      const trace = traceContextIn(entry.event.metadata);
      return trace ? (entry.outbox ?? []).map((row) => ({ ...row, trace })) : (entry.outbox ?? []);
    });
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
    // worker.close() must end even when Redis does not answer: the same bounded close es.close() uses.
    const gracefulClose = worker.close.bind(worker);
    let closing: Promise<void> | undefined;
    worker.close = (force = false) => (closing ??= this.#closeWorker(worker, gracefulClose, force));
    this.#workers.add(worker);
    if (options.relay !== false) this.relay();
    return worker;
  }

  relay(options: RelayOptions = {}): OutboxRelay {
    const relay = new OutboxRelay(
      this.#dataSource,
      this.queue,
      { ...this.#queueOptions.relay, ...options },
      this.#onError,
      this.#queueOptions.keepOutboxUntil ?? 'enqueued',
    ).start();
    this.#relays.add(relay);
    return relay;
  }

  /** Outbox rows not yet in the queue, hand-overs in progress, and jobs not finished. */
  async pendingJobs(): Promise<number> {
    if (!this.#queue) return 0;
    const [outbox, jobs] = await Promise.all([countOutboxRows(this.#dataSource.manager), this.#queue.unfinishedJobs()]);
    return outbox + jobs + this.reactions.deliveriesInProgress;
  }

  /**
   * Closes workers (letting running jobs finish), relays and the queue; every step runs even if
   * one fails, and none takes longer than `closeTimeout` before its connections are dropped.
   */
  async close(): Promise<void> {
    const timeout = this.#closeTimeout;
    const steps: Promise<unknown>[] = [
      ...[...this.#workers].map((worker) => worker.close()),
      ...[...this.#relays].map((relay) => withTimeout(relay.close(), timeout, 'closing the outbox relay')),
      this.#releaseQueueName(),
    ];
    const results = await Promise.allSettled(steps);
    this.#workers.clear();
    this.#relays.clear();
    await this.reactions.settle(Math.min(timeout, 2000));
    if (this.#queue) {
      const queue = this.#queue;
      await withTimeout(queue.close(), timeout, 'closing the reactor queue').catch(() => dropConnections(queue.queue, this.#queueOptions));
    }
    for (const result of results) if (result.status === 'rejected') this.#onError(result.reason);
  }

  get #closeTimeout(): number {
    return this.#queueOptions.closeTimeout ?? 5000;
  }

  /**
   * Closes a worker, its running jobs finishing first, within `closeTimeout`. A Redis that is
   * down, or up but not answering (frozen, failing over), never lets BullMQ's graceful close
   * finish (taskforcesh/bullmq#4656): then the reactor calls running here get the same time to
   * finish, and the worker's connections are dropped. A job it could not mark completed stays
   * active in Redis and runs again elsewhere once its lock expires, as after a crash.
   */
  async #closeWorker(worker: Worker<ReactorJobData>, gracefulClose: (force?: boolean) => Promise<void>, force: boolean): Promise<void> {
    const timeout = this.#closeTimeout;
    try {
      // A Redis known to be down: no point waiting for a graceful close.
      const down = this.#queueOptions.backend !== 'postgres' && !(await redisAnswers(worker));
      if (down) await withTimeout(Promise.allSettled([...this.#running]), timeout, 'reactor calls in progress');
      await withTimeout(gracefulClose(force || down), timeout, 'closing the reactor worker');
    } catch {
      await withTimeout(Promise.allSettled([...this.#running]), timeout, 'reactor calls in progress').catch(() => undefined);
      await dropConnections(worker, this.#queueOptions);
    } finally {
      this.#workers.delete(worker);
    }
  }
}

/** Whether a worker's Redis connection is up right now (never connected counts as down). */
async function redisAnswers(worker: Worker<ReactorJobData>): Promise<boolean> {
  const client = await withTimeout(worker.getBackend().client, 250, 'connecting to Redis').catch(() => undefined);
  return client?.status === 'ready';
}

/**
 * Drops the connections of a BullMQ worker or queue without waiting for anything: BullMQ's own
 * disconnect() waits for an event a reconnecting or unanswering ioredis client never emits.
 */
async function dropConnections(owner: Worker<ReactorJobData> | Queue, options: ReactorQueueOptions): Promise<void> {
  if (options.backend === 'postgres') {
    await withTimeout(owner.disconnect(), 1000, 'disconnecting from PostgreSQL').catch(() => undefined);
    return;
  }
  const backend = owner.getBackend() as unknown as { client?: Promise<unknown>; blockingClient?: Promise<unknown>; close(force?: boolean): Promise<void> };
  // Closed first, so that BullMQ's blocking-read watchdog does not open a new connection (which
  // would keep the process alive while Redis stays frozen); not waited for, since it may hang.
  void backend.close(true).catch(() => undefined);
  for (const client of [backend.client, backend.blockingClient]) {
    if (!client) continue;
    const redis = (await withTimeout(client, 250, 'connecting to Redis').catch(() => undefined)) as
      | { connect?: () => Promise<void>; disconnect?: () => void; stream?: { destroy(): void } }
      | undefined;
    if (!redis) continue;
    // BullMQ's blocking-read watchdog may be half-way through resetting this connection: its
    // reconnect would open a fresh socket after the drop and keep the process alive.
    redis.connect = () => Promise.reject(new EventSourcingError('CLOSED', 'this Redis connection was dropped by close()'));
    redis.disconnect?.();
    // disconnect() ends the socket politely; a frozen server never answers the FIN, and the
    // half-closed socket would keep the process alive.
    redis.stream?.destroy();
  }
}
