import { freshDatabase } from '../support/database';
import { NestChild } from '../support/nest-child';
import { inspectQueue, obliterateQueue } from '../support/processes';

/**
 * EventSourcingModule.forRootAsync takes its options from a factory with `imports` and `inject`
 * (a config module's token giving the Redis URL and queue name), and attaches to a named
 * @nestjs/typeorm DataSource ('events', on its own database) rather than the default one;
 * forFeature(..., 'events') registers the aggregate's tables there and @InjectRepository(...,
 * 'events') works, in a service and in a reactor run by the module's worker.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';

test('forRootAsync with imports/inject/useFactory on a named DataSource', async () => {
  const queueName = `nestjs-async-config-${process.pid}-${Date.now()}`;
  const child = await NestChild.start('async config', 'async-app', {
    DATABASE_URL: await freshDatabase('nestjs_async_default'),
    EVENTS_DATABASE_URL: await freshDatabase('nestjs_async_events'),
    REDIS_URL: redisUrl,
    QUEUE_NAME: queueName,
  });
  const queue = inspectQueue(queueName, redisUrl);
  try {
    const result = await child.line('seen', 60_000);
    expect(await child.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(child.stderr).toBe('');
    expect(result).toEqual({
      factoryCalls: [{ redisUrl, queueName }],
      attachedToEvents: true,
      eventRows: ['Subscription.Created', 'Subscription.Activated'],
      tablesInEvents: 3,
      tablesInDefault: 0,
      instance: { status: 'active', version: 2 },
      seen: ['1 active sub_async v2'],
      destroyed: true,
    });
    // The job went through the queue the factory named.
    expect(await queue.getJobCounts('completed', 'failed')).toEqual({ completed: 1, failed: 0 });
  } finally {
    await child.kill();
    await queue.close();
    await obliterateQueue(queueName, redisUrl);
  }
}, 120_000);
