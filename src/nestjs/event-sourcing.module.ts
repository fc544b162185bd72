import { Inject, Injectable, Module, Scope, type BeforeApplicationShutdown, type DynamicModule, type OnApplicationBootstrap, type Provider } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, ModuleRef } from '@nestjs/core';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import type { Command } from '../commands/command';
import { EventSourcing } from '../event-sourcing';
import { Dispatcher } from '../reactors/dispatcher';
import type { ReactorContext } from '../reactors/reactor';
import { AggregateEvent } from '../events/aggregate-event';
import type { EventSourcingModuleAsyncOptions, EventSourcingModuleOptions } from './event-sourcing-module-options';
import { featureEntities } from './feature-entities';
import { REACTOR_METADATA, type ReactorProviderRecord } from './reactor.decorator';
import { EVENT_SOURCING, EVENT_SOURCING_MODULE_OPTIONS } from './tokens';

/** The classes of the application's providers, each once (a class may be provided in several modules). */
function providerClasses(discovery: DiscoveryService): Function[] {
  return [...new Set(discovery.getProviders().map((wrapper) => wrapper.metatype).filter((type): type is Function => typeof type === 'function'))];
}

/** The `@Reactor` classes among the application's providers, each once. */
function reactorProviders(discovery: DiscoveryService): { type: Function; record: ReactorProviderRecord }[] {
  return providerClasses(discovery).flatMap((type) => {
    const record = Reflect.getMetadata(REACTOR_METADATA, type) as ReactorProviderRecord | undefined;
    return record ? [{ type, record }] : [];
  });
}

/**
 * Registers each `@Reactor` provider with the dispatcher as a function named after it, which
 * gets the instance from Nest's container when it runs: reactors are built by Nest, with their
 * dependencies, and may depend on the EventSourcing instance themselves.
 */
function registerReactors(dispatcher: Dispatcher, discovery: DiscoveryService, moduleRef: ModuleRef): void {
  for (const { type, record } of reactorProviders(discovery)) {
    const name = record.options.name ?? type.name;
    const call = async (event: AggregateEvent, ctx: ReactorContext) => {
      const instance = moduleRef.get(type, { strict: false }) as { call?: (event: AggregateEvent, ctx: ReactorContext) => unknown };
      if (typeof instance?.call !== 'function') throw new EventSourcingConfigError(`@Reactor ${name} has no call(event, ctx) method`);
      await instance.call(event, ctx);
    };
    Object.defineProperty(call, 'name', { value: name });
    if ('async' in record.options) {
      dispatcher.on([...record.events], { async: call, attempts: record.options.attempts, backoff: record.options.backoff });
    } else {
      dispatcher.on([...record.events], { trigger: call });
    }
  }
}

/** `@nestjs/bullmq`'s tokens, when it is installed (an optional peer, loaded only here). */
interface BullmqTokens {
  getQueueToken(name: string): string;
  getSharedConfigToken(configKey?: string): string;
}

function bullmqTokens(): BullmqTokens | undefined {
  try {
    return require('@nestjs/bullmq') as BullmqTokens;
  } catch {
    return undefined;
  }
}

/** The queue options, with `BullModule.forRoot`'s connection (and prefix) where they name none. */
function withSharedConnection(options: EventSourcingModuleOptions, shared: { connection?: unknown; prefix?: string } | undefined): EventSourcingModuleOptions {
  if (!options.queue || options.queue.connection !== undefined || !shared?.connection || options.queue.backend === 'postgres') return options;
  const prefix = options.queue.prefix ?? shared.prefix;
  return { ...options, queue: { ...options.queue, connection: shared.connection as Record<string, unknown>, ...(prefix === undefined ? {} : { prefix }) } };
}

/**
 * A command instance for one call: from the container when the command class is a provider
 * (which must be transient, since each call fills the instance's attributes), else `new`.
 */
async function commandFromContainer(moduleRef: ModuleRef, command: new (...args: any[]) => Command<any>): Promise<Command<any>> {
  let scope: Scope | undefined;
  try {
    scope = moduleRef.introspect(command).scope;
  } catch {
    return new command();
  }
  if (scope !== Scope.TRANSIENT) {
    throw new EventSourcingConfigError(
      `command ${command.name} is a provider but not transient: give it @Injectable({ scope: Scope.TRANSIENT }), since every call needs an instance of its own`,
    );
  }
  return moduleRef.resolve(command, undefined, { strict: false });
}

/** `@nestjs/cqrs`'s metadata key of `@EventsHandler(...events)`: the event classes a handler handles. */
const CQRS_EVENTS_HANDLER_METADATA = '__eventsHandler__';

/**
 * Registers each `@EventsHandler` provider of this library's event classes as an async reactor
 * named after it, whose call is the handler's `handle(event)`.
 */
function registerCqrsHandlers(dispatcher: Dispatcher, discovery: DiscoveryService, moduleRef: ModuleRef): void {
  for (const type of providerClasses(discovery)) {
    const handled = Reflect.getMetadata(CQRS_EVENTS_HANDLER_METADATA, type) as unknown[] | undefined;
    const events = (handled ?? []).filter((event): event is abstract new () => AggregateEvent => typeof event === 'function' && event.prototype instanceof AggregateEvent);
    if (events.length === 0) continue;
    const handle = async (event: AggregateEvent) => {
      const instance = moduleRef.get(type, { strict: false }) as { handle?: (event: AggregateEvent) => unknown };
      if (typeof instance?.handle !== 'function') throw new EventSourcingConfigError(`@EventsHandler ${type.name} has no handle(event) method`);
      await instance.handle(event);
    };
    Object.defineProperty(handle, 'name', { value: type.name });
    dispatcher.on(events, { async: handle });
  }
}

/**
 * Checks that every reactor provider can be had from the container outside a request: a
 * request-scoped or transient one (or one depending on such a provider) would boot, then fail on
 * every event.
 */
function assertSingletons(discovery: DiscoveryService, moduleRef: ModuleRef): void {
  for (const { type, record } of reactorProviders(discovery)) {
    try {
      moduleRef.get(type, { strict: false });
    } catch (error) {
      throw new EventSourcingConfigError(
        `@Reactor ${record.options.name ?? type.name} must be a singleton provider (the default scope, depending on no request-scoped provider): reactors run outside any request (${(error as Error).message})`,
      );
    }
  }
}

/** Starts the worker on bootstrap and closes everything before TypeORM destroys the DataSource. */
@Injectable()
export class EventSourcingLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(EVENT_SOURCING) private readonly es: EventSourcing,
    @Inject(EVENT_SOURCING_MODULE_OPTIONS) private readonly options: EventSourcingModuleOptions,
    private readonly discovery: DiscoveryService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Checks the reactors are singletons, then starts the worker of `worker: { enabled: true }`. */
  onApplicationBootstrap(): void {
    assertSingletons(this.discovery, this.moduleRef);
    const { enabled = false, ...workerOptions } = this.options.worker ?? {};
    if (enabled) this.es.worker(workerOptions);
  }

  /** Before `onApplicationShutdown`, when `@nestjs/typeorm` destroys the DataSource. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.es.close();
  }
}

/**
 * Event sourcing in a NestJS application on `@nestjs/typeorm`: attaches to the application's
 * DataSource once it is initialised, provides the instance (`@InjectEventSourcing()`), registers
 * `@Reactor` providers with the dispatcher, starts a worker when asked, and closes workers,
 * relays and the queue before TypeORM destroys the DataSource. See docs/nestjs.md.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     TypeOrmModule.forRoot({ type: 'postgres', url, autoLoadEntities: true }),
 *     EventSourcingModule.forRoot({ queue: { connection: redisUrl }, worker: { enabled: process.env.ROLE === 'worker' } }),
 *     EventSourcingModule.forFeature([Subscription]),
 *   ],
 *   providers: [MailService, SubscriptionConfirmation],
 * })
 * export class AppModule {}
 * ```
 */
@Module({})
export class EventSourcingModule {
  /** Attaches with fixed options (to the DataSource named `dataSource`, else the default one). */
  static forRoot(options: EventSourcingModuleOptions & { dataSource?: string } = {}): DynamicModule {
    const { dataSource, ...rest } = options;
    return this.forRootAsync({ dataSource, queueName: rest.queue?.name, useFactory: () => rest });
  }

  /** Attaches with options a factory makes, from injected providers (a ConfigService, say). */
  static forRootAsync(options: EventSourcingModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new EventSourcingConfigError('EventSourcingModule.forRootAsync needs a useFactory function');
    }
    const bullmq = bullmqTokens();
    // With @nestjs/bullmq: the queue under its name for @InjectQueue and bull-board's Nest module.
    const queueProviders: Provider[] =
      bullmq && options.queueName ? [{ provide: bullmq.getQueueToken(options.queueName), useFactory: (es: EventSourcing) => es.queue, inject: [EVENT_SOURCING] }] : [];
    return {
      module: EventSourcingModule,
      global: true,
      imports: [DiscoveryModule, ...(options.imports ?? [])],
      providers: [
        { provide: EVENT_SOURCING_MODULE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        {
          provide: EVENT_SOURCING,
          useFactory: async (
            moduleOptions: EventSourcingModuleOptions,
            dataSource: DataSource,
            discovery: DiscoveryService,
            moduleRef: ModuleRef,
            sharedBullConfig?: { connection?: unknown; prefix?: string },
          ) => {
            const { worker: _worker, cqrsEventsHandlers = false, ...attachOptions } = withSharedConnection(moduleOptions ?? {}, sharedBullConfig);
            const dispatcher = attachOptions.dispatcher ?? new Dispatcher();
            registerReactors(dispatcher, discovery, moduleRef);
            if (cqrsEventsHandlers) registerCqrsHandlers(dispatcher, discovery, moduleRef);
            const commandFactory = attachOptions.commandFactory ?? ((command: new (...args: any[]) => Command<any>) => commandFromContainer(moduleRef, command));
            return EventSourcing.attach(dataSource, { ...attachOptions, dispatcher, commandFactory });
          },
          inject: [
            EVENT_SOURCING_MODULE_OPTIONS,
            getDataSourceToken(options.dataSource),
            DiscoveryService,
            ModuleRef,
            ...(bullmq ? [{ token: bullmq.getSharedConfigToken(), optional: true }] : []),
          ],
        },
        EventSourcingLifecycle,
        ...queueProviders,
      ],
      exports: [EVENT_SOURCING, ...queueProviders.map((provider) => (provider as { provide: string }).provide)],
    };
  }

  /**
   * Registers aggregates with `TypeOrmModule.forFeature`: each aggregate, its events class and
   * every event class, so that `autoLoadEntities` loads the whole inheritance tree, and their
   * repositories can be injected with `@InjectRepository`.
   */
  static forFeature(aggregates: Function[], dataSource?: string): DynamicModule {
    const entities = [...new Set(aggregates.flatMap((aggregate) => featureEntities(aggregate)))];
    const typeOrm = TypeOrmModule.forFeature(entities, dataSource);
    return { module: EventSourcingModule, imports: [typeOrm], exports: [typeOrm] };
  }
}
