// The public API. Everything a user imports comes from here.
export { Aggregate, type AggregateOptions, type DirectWritesMode } from './aggregates/aggregate.decorator';
export { sourcedValues } from './baselines/sourced-values';
export type { BaselineOptions, BaselineProgress, BaselineResult } from './baselines/baseline-all';
export { MissingBaselineError } from './errors/missing-baseline-error';
export { DirectWriteError } from './errors/direct-write-error';
export { BaselineMismatchError, type BaselineColumnMismatch } from './errors/baseline-mismatch-error';
export { AggregateVersion } from './aggregates/aggregate-version.decorator';
export { HasEvents } from './aggregates/has-events.decorator';
export {
  AggregateEvent,
  type AggregateOf,
  type BuildOptions,
  type DataKeys,
  type EventAttributes,
  type AggregateKeyOf,
  type EventMetadata,
} from './events/aggregate-event';
export { Attribute, type AttributeOptions } from './commands/attribute.decorator';
export { Command, type AttributeKeys, type CommandAttributes, type CommandCallOptions, type CommandEvents, type EmittedBy } from './commands/command';
export { Data, type DataOptions } from './events/data.decorator';
export { EventType, type EventTypeOptions, type Upcaster } from './events/event-type.decorator';
export { EventsOf, type EventsOfOptions } from './events/events-of.decorator';
export {
  EventSourcing,
  type AggregateClass,
  type AppendOptions,
  type CommitListener,
  type EventSourcingOptions,
} from './event-sourcing';
export { Projection, type EventClass, type ProjectionHandler, type ProjectionOptions } from './projections/projection';
export { ProjectionRebuildError } from './projections/projection-rebuild-error';
export type { FoldAggregate, FoldQuery, FoldReducer } from './projections/fold';
export type {
  DatabaseHealth,
  EventSourcingHealth,
  FailedJobsHealth,
  HealthCheck,
  HealthOptions,
  HealthStatus,
  OutboxHealth,
  ProjectionHealth,
  QueueHealth,
} from './observability/health';
export type {
  GaugeReading,
  Instrumentation,
  InstrumentationSpan,
  SpanStart,
  TelemetryAttributes,
  TelemetryMetric,
  TraceContext,
  CounterMetric,
  GaugeMetric,
  HistogramMetric,
} from './observability/instrumentation';
export type {
  Checkpoint,
  ProjectionCatchUpOptions,
  ProjectionFailure,
  ProjectionLag,
  ProjectionRebuildMode,
  ProjectionRebuildOptions,
  ProjectionRebuildResult,
  ProjectionResult,
  ProjectionRunOptions,
  Projections,
  ProjectionStatus,
} from './projections/projections';
export { Dispatcher, type DispatcherOptions, type ReactorRegistration } from './reactors/dispatcher';
export type { OutboxRelay } from './reactors/outbox-relay';
export type { Reactor, ReactorClass, ReactorContext, ReactorFunction, ReactorLike } from './reactors/reactor';
export type { ReactorJobData, ReactorWorkerOptions } from './reactors/reactor-queue';
export type { ReactorQueueOptions, RelayOptions } from './reactors/reactor-queue-options';
export type { RebuildAllOptions, RebuildProgress } from './replay/rebuild';
export type { StateAtOptions } from './replay/state-at';
export type { VerifyMismatch, VerifyOptions } from './replay/verify';
export type { EventSourcingSchema } from './schema/event-sourcing-schema';
export { eventSourcingMigration, type MigrationClass } from './schema/event-sourcing-schema-migration';
export { AggregateNotFoundError } from './errors/aggregate-not-found-error';
export { AggregateRequiredError } from './errors/aggregate-required-error';
export { ConcurrencyError } from './errors/concurrency-error';
export { ConnectionLostError } from './errors/connection-lost-error';
export { EventAlreadyWrittenError } from './errors/event-already-written-error';
export { EventApplyError } from './errors/event-apply-error';
export { EventSourcingConfigError } from './errors/event-sourcing-config-error';
export { EventSourcingError } from './errors/event-sourcing-error';
export { EventSchemaVersionError } from './errors/event-schema-version-error';
export { EventUpcastError } from './errors/event-upcast-error';
export { ImmutableEventError } from './errors/immutable-event-error';
export { InvalidEventDataError } from './errors/invalid-event-data-error';
export { ReactorDeadlockError } from './errors/reactor-deadlock-error';
export { ProjectionError } from './errors/projection-error';
export { ReactorError } from './errors/reactor-error';
export { RetiredEventTypeError } from './errors/retired-event-type-error';
export { UnknownEventAttributeError } from './errors/unknown-event-attribute-error';
export { UnknownEventTypeError } from './errors/unknown-event-type-error';
export { UsageError } from './errors/usage-error';
export { ValidationError, type AttributeIssue } from './errors/validation-error';
export { VersionOutOfRangeError } from './errors/version-out-of-range-error';
export { runCli, type CliIO } from './cli/run-cli';
