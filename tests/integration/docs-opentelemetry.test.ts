import { AggregationTemporality, InMemoryMetricExporter, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { attachWithTelemetry, startTelemetry } from '../../examples/docs/opentelemetry';
import { ActivateSubscription, CreateSubscription } from '../../examples/subscriptions/commands';
import { allEntities } from '../../examples/subscriptions/entities';
import { Subscription } from '../../examples/subscriptions/model';
import { UserRegistered } from '../../examples/subscriptions/user';
import { RewardCreated } from '../../examples/subscriptions/reward';
import { testDataSource } from '../support/database';
import { obliterateQueue, waitFor } from '../support/processes';
import { runReactors } from '../support/run-reactors';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `docs-opentelemetry-${process.pid}-${Date.now()}`;

test('docs/observability.md: the NodeSDK setup records the library spans beside those of BullMQ, and the library metrics', async () => {
  const traceExporter = new InMemorySpanExporter();
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 });
  const sdk = startTelemetry({ traceExporter, metricReader });
  const dataSource = await testDataSource(`docs_opentelemetry_${process.pid}`, allEntities);
  const es = await attachWithTelemetry(dataSource, redisUrl, queueName);
  try {
    const user = await dataSource.manager.save(UserRegistered.build({ email: 'ada@example.com', name: 'Ada' }));
    const reward = await dataSource.manager.save(RewardCreated.build({ title: 'Poster' }));
    const created = (await CreateSubscription.call({ userId: user.aggregateId, rewardId: reward.aggregateId }))!;
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await ActivateSubscription.call({ subscription, stripeKey: 'sub_1' });
    await runReactors(es, { timeout: 15_000 });
    await waitFor('both job spans', async () => traceExporter.getFinishedSpans().filter((span) => span.name.startsWith('es.reactor ') && span.kind === 4).length === 2, 5000, 20);
    const spans = traceExporter.getFinishedSpans();
    const names = new Set(spans.map((span) => span.name));
    for (const name of ['es.command ActivateSubscription', 'es.append', 'es.reactor RecountRewardSubscribers', 'es.handover', 'es.reactor SubscriptionConfirmation', 'es.reactor NewSubscriberNotification']) {
      expect(names).toContain(name);
    }
    // bullmq-otel's spans for adding and processing jobs sit beside the library's: the job span is
    // the writer's child and links to BullMQ's processing span.
    const bullmqSpans = spans.filter((span) => span.instrumentationScope.name === 'subscriptions');
    expect(bullmqSpans.length).toBeGreaterThan(0);
    const job = spans.find((span) => span.name === 'es.reactor SubscriptionConfirmation')!;
    const append = spans.find((span) => span.name === 'es.append' && span.attributes['typeorm_es.event.type'] === 'Subscription.Activated')!;
    expect(job.parentSpanContext?.spanId).toBe(append.spanContext().spanId);
    expect(job.links.map((link) => link.context.spanId)).toEqual(expect.arrayContaining([expect.any(String)]));
    expect(bullmqSpans.map((span) => span.spanContext().spanId)).toEqual(expect.arrayContaining(job.links.map((link) => link.context.spanId)));

    await metricReader.forceFlush();
    const metrics = metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics).filter((scope) => scope.scope.name === 'typeorm-event-sourcing').flatMap((scope) => scope.metrics);
    const metricNames = metrics.map((metric) => metric.descriptor.name);
    for (const name of ['typeorm_es.events.appended', 'typeorm_es.append.duration', 'typeorm_es.reactor.job.duration', 'typeorm_es.outbox.backlog']) expect(metricNames).toContain(name);
  } finally {
    await es.close();
    await dataSource.destroy();
    await sdk.shutdown();
    await obliterateQueue(queueName, redisUrl);
  }
});
