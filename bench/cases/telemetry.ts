import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { openTelemetry } from 'typeorm-event-sourcing/opentelemetry';
import type { BenchContext } from '../setup';
import { runGroup, type CaseResult } from '../harness';
import { benchDispatcher, benchEntities, BenchItemRelabeled } from '../models';
import { benchItems } from './targets';

/** Spans are batched and dropped: what is measured is the library's and the SDK's work per write. */
const discard: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined };

/**
 * The cost of `instrumentation: openTelemetry()` with an SDK recording every span: es.append on a
 * second DataSource attached with it, against es.append without it.
 */
export async function telemetryCases(ctx: BenchContext): Promise<CaseResult[]> {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discard)] });
  const meterProvider = new MeterProvider();
  const traced = new DataSource({ type: 'postgres', url: ctx.databaseUrl, entities: benchEntities });
  await traced.initialize();
  const es = await EventSourcing.attach(traced, {
    dispatcher: benchDispatcher,
    queue: { connection: ctx.redisUrl, name: `es-bench-${process.pid}` },
    instrumentation: openTelemetry({ tracerProvider, meterProvider }),
  });
  try {
    const [plain, instrumented] = [await benchItems(ctx.dataSource), await benchItems(traced)];
    return await runGroup(
      'telemetry',
      {
        name: 'es.append, no instrumentation',
        op: (i) => ctx.es.append(BenchItemRelabeled.build({ benchItem: plain[i % plain.length], label: `p-${i}` }), { expectedVersion: plain[i % plain.length].version }),
      },
      [
        {
          key: 'telemetry.append',
          name: 'es.append with openTelemetry() and an SDK recording',
          op: (i) => {
            const item = instrumented[i % instrumented.length];
            return es.append(BenchItemRelabeled.build({ benchItem: item, label: `t-${i}` }), { expectedVersion: item.version });
          },
        },
      ],
      ctx.config.writes,
    );
  } finally {
    await es.close();
    await traced.destroy();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    context.disable();
  }
}
