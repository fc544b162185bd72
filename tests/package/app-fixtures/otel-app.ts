// The pack test's OpenTelemetry app: `write` runs commands under a request span in one process,
// `work` runs their async reactor in another; each prints the spans it recorded.
import 'reflect-metadata';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { IsNotEmpty } from 'class-validator';
import { DataSource } from 'typeorm';
import { Attribute, Command, Dispatcher, EventSourcing, type ReactorContext } from 'typeorm-event-sourcing';
import { openTelemetry } from 'typeorm-event-sourcing/opentelemetry';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(tracerProvider);

class ActivateSubscription extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() stripeKey!: string;
  @Attribute() metadata?: Record<string, unknown>;
  buildEvent() {
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey, metadata: this.metadata });
  }
}

async function Welcome(event: SubscriptionActivated, ctx: ReactorContext) {
  await ctx.manager.query('INSERT INTO welcomes (event_id) VALUES ($1) ON CONFLICT DO NOTHING', [event.id]);
}

const spans = () =>
  exporter.getFinishedSpans().map((span) => ({
    name: span.name,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parent: span.parentSpanContext?.spanId ?? null,
    eventId: span.attributes['typeorm_es.event.id'] ?? null,
  }));

async function main() {
  const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, synchronize: true, entities });
  await dataSource.initialize();
  await dataSource.query('CREATE TABLE IF NOT EXISTS welcomes (event_id int PRIMARY KEY)');
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Welcome }),
    queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME },
    instrumentation: openTelemetry(),
  });
  try {
    if (process.argv[2] === 'write') {
      const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;
      const activated = await trace.getTracer('app').startActiveSpan('POST /subscriptions/activate', async (request) => {
        try {
          const written: SubscriptionActivated[] = [];
          for (const stripeKey of ['sub_1', 'sub_2']) {
            const created = await es.append(SubscriptionCreated.build({}));
            const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
            // A client sends its own trace context along with its metadata: the writer's replaces it.
            written.push((await ActivateSubscription.call({ subscription, stripeKey, metadata: { note: hostile, traceparent: hostile } }))!);
          }
          return written;
        } finally {
          request.end();
        }
      });
      // Someone with write access to Redis garbles the second job's trace context.
      for (let tries = 0; (await es.queue.getJobCounts('waiting')).waiting < 2 && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
      const jobs = await es.queue.getJobs(['waiting']);
      const second = jobs.find((job) => job.data.id === activated[1].id)!;
      await second.updateData({ ...second.data, traceparent: `00-${hostile}`, tracestate: 'x'.repeat(10_000) });
      const metadata = await dataSource.query('SELECT id::int AS id, metadata FROM subscription_events WHERE type = $1 ORDER BY id', ['Subscription.Activated']);
      console.log(JSON.stringify({ spans: spans(), metadata, jobData: jobs.map((job) => job.data.traceparent).sort() }));
    } else {
      es.worker();
      await waitForReactors(es, { timeout: 20_000 });
      const welcomes = await dataSource.query('SELECT count(*)::int AS n FROM welcomes');
      console.log(JSON.stringify({ spans: spans(), welcomes: welcomes[0].n }));
    }
  } finally {
    await es.close();
    await dataSource.destroy();
    await tracerProvider.shutdown();
  }
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
