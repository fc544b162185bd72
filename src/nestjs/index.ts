// NestJS integration, a separate entry point (`typeorm-event-sourcing/nestjs`) so the core loads
// no part of the optional peers @nestjs/common, @nestjs/core and @nestjs/typeorm.
export { EventSourcingModule, EventSourcingLifecycle } from './event-sourcing.module';
export type { EventSourcingModuleAsyncOptions, EventSourcingModuleOptions, EventSourcingWorkerOptions } from './event-sourcing-module-options';
export { InjectEventSourcing } from './inject-event-sourcing.decorator';
export { Reactor, REACTOR_METADATA, type ReactorProviderOptions, type ReactorProviderRecord } from './reactor.decorator';
export { EVENT_SOURCING, EVENT_SOURCING_MODULE_OPTIONS } from './tokens';
