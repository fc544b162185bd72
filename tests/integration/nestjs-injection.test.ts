import { freshDatabase } from '../support/database';
import { NestChild } from '../support/nest-child';
import { obliterateQueue } from '../support/processes';

/**
 * @Reactor providers get their dependencies from Nest: an async reactor depends on a service
 * that injects the EventSourcing instance (the instance whose factory registered the reactor)
 * and a repository, and runs with them; a trigger reactor that throws rolls the whole write back
 * (ReactorError; no event row, no outbox row, the reactor's own UPDATE undone, the aggregate
 * instance and the event object as before).
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';

test('reactors with injected services, and a throwing trigger reactor rolling the write back', async () => {
  const queueName = `nestjs-injection-${process.pid}-${Date.now()}`;
  const child = await NestChild.start('injection', 'injection-app', {
    DATABASE_URL: await freshDatabase('nestjs_injection'),
    REDIS_URL: redisUrl,
    QUEUE_NAME: queueName,
  });
  try {
    const result = await child.line('sent', 60_000);
    expect(await child.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(child.stderr).toBe('');
    expect(result).toEqual({
      sent: ['1 active v2: Subscription.Created, Subscription.Activated'],
      error: {
        reactorError: true,
        reactor: 'RefuseTestKeys',
        message: 'reactor RefuseTestKeys failed on Subscription.Activated of aggregate 2: test key test_1 refused',
      },
      refusedEvent: { id: null, version: null },
      badInstance: { status: 'pending', version: 1 },
      badStored: { status: 'pending', version: 1, stripeKey: null, outbox: 0, events: 1 },
    });
  } finally {
    await child.kill();
    await obliterateQueue(queueName, redisUrl);
  }
}, 120_000);
