// OpenTelemetry integration, a separate entry point (`typeorm-event-sourcing/opentelemetry`) so
// the core loads no part of the optional peer `@opentelemetry/api`.
export { openTelemetry, type OpenTelemetryOptions } from '../observability/open-telemetry';
export {
  TELEMETRY_METRICS,
  type CounterMetric,
  type GaugeMetric,
  type GaugeReading,
  type HistogramMetric,
  type Instrumentation,
  type InstrumentationSpan,
  type SpanStart,
  type TelemetryAttributes,
  type TelemetryMetric,
  type TraceContext,
} from '../observability/instrumentation';
