import type { DataSource } from 'typeorm';

/** Span and metric attributes: OpenTelemetry's primitive values. */
export type TelemetryAttributes = Record<string, string | number | boolean | undefined>;

/** A W3C trace context (`traceparent`, `tracestate`), as stored in event metadata and job data. */
export interface TraceContext {
  /** `00-<trace id>-<span id>-<flags>`. */
  readonly traceparent: string;
  /** Vendor state, when the trace has any. */
  readonly tracestate?: string;
}

/** The span a traced call runs in. */
export interface InstrumentationSpan {
  /** Adds attributes learnt while the call runs (the write path taken, the version written). */
  setAttributes(attributes: TelemetryAttributes): void;
}

/** How a span starts. */
export interface SpanStart {
  /**
   * OpenTelemetry's span kind: `producer` for the hand-over of jobs, `consumer` for a job.
   * @defaultValue 'internal'
   */
  readonly kind?: 'internal' | 'producer' | 'consumer';
  /** The parent, from another process (a job's data, an event's metadata); else the active span. */
  readonly parent?: TraceContext;
  /** Spans this one is related to without being their child. */
  readonly links?: readonly TraceContext[];
}

/** One value of an observable gauge, with its attributes. */
export interface GaugeReading {
  /** The gauge. */
  readonly metric: GaugeMetric;
  /** The value. */
  readonly value: number;
  /** Its attributes (a projection's name, say). */
  readonly attributes?: TelemetryAttributes;
}

/**
 * What the library reports about itself: spans around its work, counters, histograms and gauges.
 * `openTelemetry()` from `typeorm-event-sourcing/opentelemetry` is the implementation; the core
 * only calls this interface, so it loads no telemetry package, and without one it does nothing.
 */
export interface Instrumentation {
  /** Runs `fn` in a span that ends when it settles; a rejection marks the span as failed. */
  span<T>(name: string, attributes: TelemetryAttributes, fn: (span: InstrumentationSpan) => Promise<T>, start?: SpanStart): Promise<T>;
  /** The active span's W3C trace context, or undefined outside any recorded span. */
  traceContext(): TraceContext | undefined;
  /** Adds to a counter of {@link TELEMETRY_METRICS}. */
  count(metric: CounterMetric, value: number, attributes?: TelemetryAttributes): void;
  /** Records a value of a histogram of {@link TELEMETRY_METRICS}. */
  record(metric: HistogramMetric, value: number, attributes?: TelemetryAttributes): void;
  /**
   * Registers how to read gauges of {@link TELEMETRY_METRICS} when metrics are collected: one
   * `read` gives the values of all of `metrics` (one query for several gauges). Returns a function
   * that stops reading them.
   */
  observe(metrics: readonly GaugeMetric[], read: () => Promise<readonly GaugeReading[]>): () => void;
}

/** The counters the library adds to. */
export type CounterMetric =
  | 'typeorm_es.events.appended'
  | 'typeorm_es.concurrency.conflicts'
  | 'typeorm_es.relay.deliveries'
  | 'typeorm_es.relay.failures'
  | 'typeorm_es.reactor.job.failures';
/** The histograms the library records. */
export type HistogramMetric = 'typeorm_es.append.duration' | 'typeorm_es.reactor.job.duration';
/** The gauges the library reads when metrics are collected. */
export type GaugeMetric = 'typeorm_es.outbox.backlog' | 'typeorm_es.outbox.oldest_age' | 'typeorm_es.projection.lag' | 'typeorm_es.projection.lag_events';

/** What a metric is. */
export interface TelemetryMetric {
  /** Its instrument. */
  readonly kind: 'counter' | 'histogram' | 'gauge';
  /** Its unit, in UCUM as OpenTelemetry's semantic conventions write them. */
  readonly unit: string;
  /** What it measures. */
  readonly description: string;
}

/** Every metric the library reports, with its kind, unit and description (as the docs list them). */
export const TELEMETRY_METRICS: Readonly<Record<CounterMetric | HistogramMetric | GaugeMetric, TelemetryMetric>> = {
  'typeorm_es.events.appended': { kind: 'counter', unit: '{event}', description: 'Events committed, by event type and aggregate' },
  'typeorm_es.append.duration': { kind: 'histogram', unit: 's', description: 'Time of es.append (and of each command write), by aggregate, write path and outcome' },
  'typeorm_es.concurrency.conflicts': { kind: 'counter', unit: '{conflict}', description: 'Appends refused with ConcurrencyError, by aggregate' },
  'typeorm_es.outbox.backlog': { kind: 'gauge', unit: '{row}', description: 'Outbox rows not yet handed to the queue' },
  'typeorm_es.outbox.oldest_age': { kind: 'gauge', unit: 's', description: 'Age of the oldest outbox row not yet handed to the queue (0 when none)' },
  'typeorm_es.relay.deliveries': { kind: 'counter', unit: '{job}', description: 'Jobs the outbox relay handed to the queue' },
  'typeorm_es.relay.failures': { kind: 'counter', unit: '{batch}', description: 'Relay batches that failed (the rows stay in the outbox)' },
  'typeorm_es.reactor.job.duration': { kind: 'histogram', unit: 's', description: 'Time of an async reactor job attempt, by reactor and outcome' },
  'typeorm_es.reactor.job.failures': { kind: 'counter', unit: '{attempt}', description: 'Async reactor job attempts that failed, by reactor' },
  'typeorm_es.projection.lag': { kind: 'gauge', unit: 's', description: 'Age of the oldest event a projection has not handled (0 when caught up), by projection' },
  'typeorm_es.projection.lag_events': { kind: 'gauge', unit: '{event}', description: 'Events a projection has not handled yet, by projection' },
};

const NO_SPAN: InstrumentationSpan = { setAttributes: () => undefined };

/** Without telemetry: calls run as they are, nothing is recorded. */
const noInstrumentation: Instrumentation = {
  span: (_name, _attributes, fn) => fn(NO_SPAN),
  traceContext: () => undefined,
  count: () => undefined,
  record: () => undefined,
  observe: () => () => undefined,
};

const instrumentations = new WeakMap<DataSource, Instrumentation>();

/** The instrumentation attached with a DataSource's EventSourcing, or one that does nothing. */
export function instrumentationOf(dataSource: DataSource): Instrumentation {
  return instrumentations.get(dataSource) ?? noInstrumentation;
}

/** Sets (or, with undefined, removes) the instrumentation of a DataSource's EventSourcing. */
export function instrument(dataSource: DataSource, instrumentation: Instrumentation | undefined): void {
  if (instrumentation) instrumentations.set(dataSource, instrumentation);
  else instrumentations.delete(dataSource);
}

/** W3C `traceparent`, version 00, capturing trace id, parent span id and flags. */
export const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace context an event's metadata (or a job's data) carries, if it is well-formed. */
export function traceContextIn(metadata: unknown): TraceContext | undefined {
  if (metadata === null || typeof metadata !== 'object') return undefined;
  const { traceparent, tracestate } = metadata as Record<string, unknown>;
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  return typeof tracestate === 'string' && tracestate.length <= 512 ? { traceparent, tracestate } : { traceparent };
}

/** Seconds since `started` (a `performance.now()` reading). */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
