// #region imports
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { BullMQOtel } from 'bullmq-otel';
import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { openTelemetry } from 'typeorm-event-sourcing/opentelemetry';
import { dispatcher } from '../subscriptions/dispatcher';
// #endregion imports

/** Where the SDK sends what it records: OTLP exporters in production, in-memory ones in the suite. */
export interface TelemetryExport {
  traceExporter: SpanExporter;
  metricReader: MetricReader;
}

// #region sdk
/**
 * Started first thing in the process (before `pg` is loaded, so that the pg instrumentation can
 * wrap it): the SDK registers the global tracer and meter providers, W3C propagation and the
 * async context the library's spans nest in.
 */
export function startTelemetry({ traceExporter, metricReader }: TelemetryExport): NodeSDK {
  const sdk = new NodeSDK({
    serviceName: 'subscriptions',
    traceExporter, // e.g. new OTLPTraceExporter() from @opentelemetry/exporter-trace-otlp-http
    metricReader, // e.g. new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() })
    instrumentations: [new PgInstrumentation()], // every SQL statement as a span, TypeORM's included
  });
  sdk.start();
  return sdk;
}
// #endregion sdk

// #region attach
/** The library's spans and metrics go to the global providers; BullMQ's own spans too, through bullmq-otel. */
export function attachWithTelemetry(dataSource: DataSource, redisUrl: string, queueName: string): Promise<EventSourcing> {
  return EventSourcing.attach(dataSource, {
    dispatcher,
    queue: { connection: redisUrl, name: queueName, telemetry: new BullMQOtel({ tracerName: 'subscriptions' }) },
    instrumentation: openTelemetry(),
  });
}
// #endregion attach
