import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { DataSource } from 'typeorm';
import { ConcurrencyError, Dispatcher, EventSourcing, EventSourcingConfigError, Projection, UsageError, ValidationError, type ReactorContext } from 'typeorm-event-sourcing';
import { openTelemetry } from 'typeorm-event-sourcing/opentelemetry';
import { resetEventStore } from 'typeorm-event-sourcing/testing';
import { ActivateSubscription, commandEntities, CreateSubscription } from '../support/command-models';
import { testDataSource } from '../support/database';
import { obliterateQueue, waitFor } from '../support/processes';
import { Subscription, SubscriptionActivated } from '../support/subscription-model';
import { runReactors } from '../support/run-reactors';

/**
 * The library's spans and metrics, read back from OpenTelemetry's in-memory exporter and a metric
 * reader: one command with a trigger and an async reactor makes one trace, from the command
 * through the write and the hand-over to the job in the worker.
 */

class TestMetricReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `opentelemetry-${process.pid}-${Date.now()}`;
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const metricReader = new TestMetricReader();
const meterProvider = new MeterProvider({ readers: [metricReader] });
const contextManager = new AsyncLocalStorageContextManager().enable();
const requestTracer = tracerProvider.getTracer('the application');

let failNextMail = false;
function Mailer(event: SubscriptionActivated, ctx: ReactorContext) {
  if (failNextMail) {
    failNextMail = false;
    throw new Error('mail server down');
  }
  return ctx.manager.query('SELECT 1');
}
function CountActivation() {}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  context.setGlobalContextManager(contextManager);
  dataSource = await testDataSource(`opentelemetry_${process.pid}`, commandEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Mailer, attempts: 2, backoff: 10 }).on(SubscriptionActivated, { trigger: CountActivation }),
    queue: { connection: redisUrl, name: queueName },
    instrumentation: openTelemetry({ tracerProvider, meterProvider }),
  });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  await obliterateQueue(queueName, redisUrl);
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  context.disable();
});

beforeEach(() => exporter.reset());

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((span) => span.name === name);
const only = (name: string): ReadableSpan => {
  const found = named(name);
  expect(found.map((span) => span.name)).toEqual([name]);
  return found[0];
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

async function metric(name: string): Promise<MetricData | undefined> {
  const { resourceMetrics } = await metricReader.collect();
  return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name);
}
const points = async (name: string) => ((await metric(name))?.dataPoints ?? []).map((point) => ({ attributes: point.attributes, value: point.value }));

async function newSubscription(): Promise<Subscription> {
  const created = (await CreateSubscription.call({ userId: 7 }))!;
  return dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
}

test('one command with a trigger and an async reactor: one trace from the request through the write and hand-over to the job in the worker', async () => {
  const subscription = await newSubscription();
  exporter.reset();
  const activated = await requestTracer.startActiveSpan('POST /subscriptions/:id/activate', async (request) => {
    try {
      return (await ActivateSubscription.call({ subscription, stripeKey: 'sub_1' }))!;
    } finally {
      request.end();
    }
  });
  await runReactors(es, { timeout: 15_000 });
  await waitFor('the job span', async () => named('es.reactor Mailer').length === 1, 5000, 10);

  const request = only('POST /subscriptions/:id/activate');
  const command = only('es.command ActivateSubscription');
  const append = only('es.append');
  const trigger = only('es.reactor CountActivation');
  const handover = only('es.handover');
  const job = only('es.reactor Mailer');
  const traceId = request.spanContext().traceId;
  for (const span of [command, append, trigger, handover, job]) expect(span.spanContext().traceId).toBe(traceId);
  expect(parentOf(command)).toBe(request.spanContext().spanId);
  expect(parentOf(append)).toBe(command.spanContext().spanId);
  expect(parentOf(trigger)).toBe(append.spanContext().spanId);
  // The job runs in the worker, long after the request: a child of the span that wrote the event.
  expect(parentOf(job)).toBe(append.spanContext().spanId);

  expect(command.attributes).toEqual({ 'typeorm_es.command': 'ActivateSubscription', 'typeorm_es.command.outcome': 'written', 'typeorm_es.command.retries': 0, 'typeorm_es.events': 1 });
  expect(append.attributes).toEqual({
    'typeorm_es.aggregate': 'Subscription',
    'typeorm_es.event.type': 'Subscription.Activated',
    'typeorm_es.aggregate.id': String(subscription.id),
    'typeorm_es.event.id': activated.id,
    'typeorm_es.event.version': 2,
    'typeorm_es.path': 'fast',
  });
  expect(trigger.attributes).toMatchObject({ 'typeorm_es.reactor': 'CountActivation', 'typeorm_es.reactor.mode': 'trigger', 'typeorm_es.event.id': activated.id });
  expect(job.attributes).toMatchObject({ 'typeorm_es.reactor': 'Mailer', 'typeorm_es.reactor.mode': 'async', 'typeorm_es.event.id': activated.id, 'typeorm_es.job.attempt': 1 });
  expect(handover.attributes).toEqual({ 'typeorm_es.queue': queueName, 'typeorm_es.jobs': 1 });

  // The W3C trace context of the write, in the event's metadata and in the job's data.
  const traceparent = `00-${traceId}-${append.spanContext().spanId}-01`;
  const [row] = await dataSource.query(`SELECT metadata FROM subscription_events WHERE id = $1`, [activated.id]);
  expect(row.metadata).toEqual({ traceparent });
  const [stored] = await es.queue.getJobs(['completed']);
  expect(stored.data).toMatchObject({ id: activated.id, reactor: 'Mailer', traceparent });
});

test('the locked path, a no-op, an invalid call, a conflict retried and a failed job attempt, in spans and metrics', async () => {
  await resetEventStore(es);
  const subscription = await newSubscription();
  exporter.reset();
  // Written with manager.save: the locked path, in an es.write span.
  await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_2' }));
  expect(only('es.write').attributes).toMatchObject({ 'typeorm_es.path': 'locked', 'typeorm_es.event.version': 2 });

  expect(await ActivateSubscription.call({ subscription, stripeKey: 'sub_2' })).toBeNull();
  expect(named('es.command ActivateSubscription').pop()?.attributes['typeorm_es.command.outcome']).toBe('noop');
  await expect(ActivateSubscription.call({ subscription: await newSubscription(), stripeKey: '' })).rejects.toThrow(ValidationError);
  const invalid = named('es.command ActivateSubscription').pop()!;
  expect(invalid.attributes['typeorm_es.command.outcome']).toBe('invalid');
  expect(invalid.status).toMatchObject({ code: 2 });
  expect(invalid.events.map((event) => event.name)).toEqual(['exception']);

  // A stale instance: the command's write conflicts, it reloads the row, retries, and finds the
  // subscription active already.
  const fresh = await newSubscription();
  const stale = await dataSource.manager.findOneByOrFail(Subscription, { id: fresh.id });
  await es.append(SubscriptionActivated.build({ subscription: fresh, stripeKey: 'sub_3' }));
  expect(await ActivateSubscription.call({ subscription: stale, stripeKey: 'sub_4' })).toBeNull();
  expect(named('es.command ActivateSubscription').pop()?.attributes).toMatchObject({ 'typeorm_es.command.outcome': 'noop', 'typeorm_es.command.retries': 1 });
  await expect(es.append(SubscriptionActivated.build({ subscription: stale, stripeKey: 'sub_5' }), { expectedVersion: 1 })).rejects.toThrow(ConcurrencyError);
  expect(named('es.append').pop()?.status).toMatchObject({ code: 2, message: expect.stringContaining('Subscription') });

  failNextMail = true;
  await runReactors(es, { timeout: 15_000 });
  const failedAttempt = named('es.reactor Mailer').find((span) => span.status.code === 2)!;
  expect(failedAttempt.status.message).toBe('mail server down');
  expect(failedAttempt.attributes['typeorm_es.job.attempt']).toBe(1);

  expect(await points('typeorm_es.concurrency.conflicts')).toEqual([{ attributes: { 'typeorm_es.aggregate': 'Subscription' }, value: expect.any(Number) }]);
  expect(await points('typeorm_es.reactor.job.failures')).toEqual([{ attributes: { 'typeorm_es.reactor': 'Mailer' }, value: 1 }]);
  const appended = await points('typeorm_es.events.appended');
  expect(appended.find((point) => point.attributes['typeorm_es.event.type'] === 'Subscription.Activated')?.value).toBeGreaterThanOrEqual(3);
  const durations = (await metric('typeorm_es.append.duration'))!.dataPoints.map((point) => point.attributes);
  expect(durations).toEqual(expect.arrayContaining([{ 'typeorm_es.aggregate': 'Subscription', 'typeorm_es.path': 'fast', 'typeorm_es.outcome': 'written' }]));
  expect(durations).toEqual(expect.arrayContaining([expect.objectContaining({ 'typeorm_es.outcome': 'conflict' })]));
  const jobDurations = (await metric('typeorm_es.reactor.job.duration'))!.dataPoints.map((point) => point.attributes['typeorm_es.outcome']).sort();
  expect(jobDurations).toEqual(['completed', 'failed']);
});

test('relay batches and gauges: outbox backlog, its age, relay deliveries and projection lag', async () => {
  await resetEventStore(es);
  const activations = new Projection('activations').on(SubscriptionActivated, () => undefined);
  await es.projections.catchUp(activations);
  // A write whose hand-over cannot happen (as when the process dies after COMMIT): the rows wait for the relay.
  const subscription = await newSubscription();
  await dataSource.transaction(async (manager) => {
    await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_relay' }));
  });
  await waitFor('the hand-over', async () => (await es.queue.getJobCounts('waiting')).waiting === 1, 5000, 10);
  await es.queue.obliterate({ force: true });
  await dataSource.query(`INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, created_at)
    SELECT 'subscription_events', id, position, type, 'Mailer', now() - interval '1 minute' FROM subscription_events WHERE type = 'Subscription.Activated'`);
  expect(await points('typeorm_es.outbox.backlog')).toEqual([{ attributes: {}, value: 1 }]);
  expect((await points('typeorm_es.outbox.oldest_age'))[0].value).toBeGreaterThanOrEqual(59);
  const lag = await points('typeorm_es.projection.lag_events');
  expect(lag).toEqual([{ attributes: { 'typeorm_es.projection': 'activations' }, value: expect.any(Number) }]);

  exporter.reset();
  const relay = es.relay({ interval: 60_000, grace: 0 });
  try {
    await waitFor('the relay batch', async () => named('es.relay').length === 1, 5000, 10);
  } finally {
    await relay.close();
  }
  expect(only('es.relay').attributes).toEqual({ 'typeorm_es.queue': queueName, 'typeorm_es.jobs': 1 });
  expect(only('es.relay').kind).toBe(3); // PRODUCER
  expect(await points('typeorm_es.outbox.backlog')).toEqual([{ attributes: {}, value: 0 }]);
  expect((await points('typeorm_es.relay.deliveries'))[0].value).toBeGreaterThanOrEqual(1);

  // The relay's job carries no trace context: the worker takes it from the event's metadata.
  const [job] = await es.queue.getJobs(['waiting']);
  expect(job.data.traceparent).toBeUndefined();
  await runReactors(es, { timeout: 15_000 });
  await waitFor('the job span', async () => named('es.reactor Mailer').length === 1, 5000, 10);
  const [row] = await dataSource.query(`SELECT metadata FROM subscription_events WHERE type = 'Subscription.Activated'`);
  const [, traceId, spanId] = row.metadata.traceparent.split('-');
  expect(only('es.reactor Mailer').spanContext().traceId).toBe(traceId);
  expect(parentOf(only('es.reactor Mailer'))).toBe(spanId);
  await es.queue.obliterate({ force: true });
});

test('an append outside any application span stores the trace context of its own span', async () => {
  await resetEventStore(es);
  const subscription = await newSubscription();
  exporter.reset();
  const written = await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_plain' }), {});
  const [row] = await dataSource.query(`SELECT metadata FROM subscription_events WHERE id = $1`, [written.id]);
  expect(row.metadata).toEqual({ traceparent: `00-${only('es.append').spanContext().traceId}-${only('es.append').spanContext().spanId}-01` });
  expect(parentOf(only('es.append'))).toBeUndefined();
  await es.queue.obliterate({ force: true });
});

test('an instrumentation that is not one is refused at attach, by name', async () => {
  const other = await testDataSource(`opentelemetry_bad_${process.pid}`, commandEntities);
  try {
    for (const bad of [{}, null, 'openTelemetry']) {
      const attaching = EventSourcing.attach(other, { instrumentation: bad as never });
      await expect(attaching).rejects.toThrow(EventSourcingConfigError);
      await expect(attaching).rejects.toThrow('the instrumentation option must be made by openTelemetry() from typeorm-event-sourcing/opentelemetry');
    }
    expect(() => openTelemetry('tracer' as never)).toThrow(UsageError);
    expect(() => openTelemetry('tracer' as never)).toThrow('openTelemetry: options must be an object');
  } finally {
    await other.destroy();
  }
});
