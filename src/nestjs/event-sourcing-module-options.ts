import type { ModuleMetadata } from '@nestjs/common';
import type { EventSourcingOptions } from '../event-sourcing-options';
import type { ReactorWorkerOptions } from '../reactors/reactor-queue';

/** The worker a module starts on application bootstrap. */
export interface EventSourcingWorkerOptions extends ReactorWorkerOptions {
  /**
   * Start an `es.worker()` when the application boots (a worker process), or not (an API
   * process that only writes).
   * @defaultValue false
   */
  enabled?: boolean;
}

/** Options of `EventSourcingModule.forRoot`: `EventSourcing.attach`'s, and the worker's. */
export interface EventSourcingModuleOptions extends EventSourcingOptions {
  /** Starts a reactor worker on application bootstrap when `enabled`. */
  worker?: EventSourcingWorkerOptions;
  /**
   * Run the application's `@EventsHandler` classes (from `@nestjs/cqrs`) of this library's event
   * classes as durable async reactors: each handler's `handle(event)` becomes a BullMQ job after
   * the event commits, retried on failure, never lost, instead of an in-memory EventBus call.
   * Handlers of other events are left to the EventBus. Don't also publish these events on the
   * EventBus, or the handlers run twice.
   * @defaultValue false
   */
  cqrsEventsHandlers?: boolean;
}

/** Options of `EventSourcingModule.forRootAsync`. */
export interface EventSourcingModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /**
   * The name of the `@nestjs/typeorm` DataSource to attach to (`TypeOrmModule.forRoot({ name })`).
   * @defaultValue the default DataSource
   */
  dataSource?: string;
  /**
   * The reactor queue's name, when `useFactory` sets `queue.name`: with `@nestjs/bullmq`
   * installed, the queue is then registered under it, for `@InjectQueue(name)` and bull-board's
   * Nest module. (`forRoot` takes it from `queue.name`.)
   */
  queueName?: string;
  /** Providers passed to `useFactory`. */
  inject?: any[];
  /** Makes the options, from configuration for instance. */
  useFactory: (...args: any[]) => EventSourcingModuleOptions | Promise<EventSourcingModuleOptions>;
}
