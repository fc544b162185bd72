import {
  context,
  createTraceState,
  isSpanContextValid,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Link,
  type MeterProvider,
  type ObservableGauge,
  type BatchObservableResult,
  type SpanContext,
  type TracerProvider,
} from '@opentelemetry/api';
import { UsageError } from '../errors/usage-error';
import {
  TELEMETRY_METRICS,
  TRACEPARENT,
  type CounterMetric,
  type GaugeMetric,
  type GaugeReading,
  type HistogramMetric,
  type Instrumentation,
  type TelemetryAttributes,
  type TraceContext,
} from './instrumentation';

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /**
   * Where spans go.
   * @defaultValue the global tracer provider (the one `NodeSDK.start()` registers)
   */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go.
   * @defaultValue the global meter provider
   */
  meterProvider?: MeterProvider;
}

const INSTRUMENTATION_SCOPE = 'typeorm-event-sourcing';
const KINDS = { internal: SpanKind.INTERNAL, producer: SpanKind.PRODUCER, consumer: SpanKind.CONSUMER } as const;

function attributesOf(attributes: TelemetryAttributes | undefined): Attributes {
  const defined: Attributes = {};
  for (const [key, value] of Object.entries(attributes ?? {})) if (value !== undefined) defined[key] = value;
  return defined;
}

/** A span context read from a W3C trace context, or undefined when it is malformed. */
function spanContextOf(carrier: TraceContext): SpanContext | undefined {
  const match = TRACEPARENT.exec(carrier.traceparent);
  if (!match) return undefined;
  let traceState;
  try {
    traceState = carrier.tracestate ? createTraceState(carrier.tracestate) : undefined;
  } catch {
    traceState = undefined;
  }
  const spanContext: SpanContext = { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true, traceState };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

function traceContextOf(spanContext: SpanContext): TraceContext {
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${spanContext.traceFlags.toString(16).padStart(2, '0')}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * The library's telemetry through the OpenTelemetry API (optional peer `@opentelemetry/api`):
 * pass it as `EventSourcing.attach(dataSource, { instrumentation: openTelemetry() })`. Spans:
 * `es.append`, `es.write`, `es.command <Command>`, `es.reactor <Reactor>` (trigger and async),
 * `es.handover` and `es.relay`; the trace context of the span that wrote an event is stored in
 * its metadata (`traceparent`, `tracestate`) and in its jobs' data, so an async reactor's span
 * continues the writer's trace in the worker. Metrics: {@link TELEMETRY_METRICS}.
 *
 * With no SDK registered, the API's no-op tracer and meter make all of this cost next to nothing.
 *
 * @example
 * ```ts
 * import { openTelemetry } from 'typeorm-event-sourcing/opentelemetry';
 *
 * const es = await EventSourcing.attach(dataSource, { dispatcher, queue, instrumentation: openTelemetry() });
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Instrumentation {
  if (options === null || typeof options !== 'object') throw new UsageError('openTelemetry', 'options', 'must be an object');
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE);
  const counters = new Map<string, Counter>();
  const histograms = new Map<string, Histogram>();
  const gauges = new Map<string, ObservableGauge>();
  const described = (metric: keyof typeof TELEMETRY_METRICS) => ({ unit: TELEMETRY_METRICS[metric].unit, description: TELEMETRY_METRICS[metric].description });

  return {
    span(name, attributes, fn, start = {}) {
      let parent: Context = context.active();
      const links: Link[] = (start.links ?? []).flatMap((carrier) => {
        const spanContext = spanContextOf(carrier);
        return spanContext ? [{ context: spanContext }] : [];
      });
      const remote = start.parent && spanContextOf(start.parent);
      if (remote) {
        // The span that was running (BullMQ's job span, say) stays related, as a link.
        const active = trace.getSpanContext(parent);
        if (active && isSpanContextValid(active)) links.push({ context: active });
        parent = trace.setSpanContext(parent, remote);
      }
      return tracer.startActiveSpan(name, { kind: KINDS[start.kind ?? 'internal'], attributes: attributesOf(attributes), links }, parent, async (span) => {
        try {
          return await fn({ setAttributes: (more) => span.setAttributes(attributesOf(more)) });
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
          throw error;
        } finally {
          span.end();
        }
      });
    },

    traceContext() {
      const spanContext = trace.getSpanContext(context.active());
      return spanContext && isSpanContextValid(spanContext) ? traceContextOf(spanContext) : undefined;
    },

    count(metric: CounterMetric, value, attributes) {
      let counter = counters.get(metric);
      if (!counter) counters.set(metric, (counter = meter.createCounter(metric, described(metric))));
      counter.add(value, attributesOf(attributes));
    },

    record(metric: HistogramMetric, value, attributes) {
      let histogram = histograms.get(metric);
      if (!histogram) histograms.set(metric, (histogram = meter.createHistogram(metric, described(metric))));
      histogram.record(value, attributesOf(attributes));
    },

    observe(names: readonly GaugeMetric[], read: () => Promise<readonly GaugeReading[]>) {
      const observed = names.map((metric) => {
        let gauge = gauges.get(metric);
        if (!gauge) gauges.set(metric, (gauge = meter.createObservableGauge(metric, described(metric))));
        return gauge;
      });
      const callback = async (result: BatchObservableResult) => {
        // A database that does not answer leaves the gauges without values this time.
        const readings = await read().catch(() => []);
        for (const reading of readings) {
          const gauge = gauges.get(reading.metric);
          if (gauge && names.includes(reading.metric)) result.observe(gauge, reading.value, attributesOf(reading.attributes));
        }
      };
      meter.addBatchObservableCallback(callback, observed);
      return () => meter.removeBatchObservableCallback(callback, observed);
    },
  };
}
