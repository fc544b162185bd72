import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freshDatabase } from '../support/database';
import { obliterateQueue } from '../support/processes';
import { buildOnce } from '../support/test-build';

/**
 * EventSourcingModule in a Nest application context (NestJS 12 is ESM-only: jest's CommonJS mode
 * cannot load it, so the application runs compiled, in a child process): the DataSource of
 * @nestjs/typeorm attached, a @Reactor provider with injected services run by the module's
 * worker, forFeature with autoLoadEntities, shutdown closing the instance, and two modules on one
 * DataSource refused by name.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';

test('forRoot, forFeature, @Reactor providers with injection, the worker and shutdown, in a Nest application', async () => {
  const dir = await buildOnce('nestjs', 'tests/nestjs/tsconfig.json', ['src', 'tests/nestjs']);
  const queueName = `nestjs-module-${process.pid}-${Date.now()}`;
  const run = spawnSync(process.execPath, [path.join(dir, 'tests', 'nestjs', 'module-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_module'), QUEUE_NAME: queueName },
    timeout: 60_000,
  });
  await obliterateQueue(queueName, redisUrl);
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    mail: ['subscriber 1: active after 2 events (attempt 1)', 'subscriber 2: active after 2 events (attempt 1)'],
    commandProvider: 'price_pro',
    shared: 'EventSourcingConfigError: command SharedCommand is a provider but not transient: give it @Injectable({ scope: Scope.TRANSIENT }), since every call needs an instance of its own',
    triggers: 2,
    row: { status: 'active', version: 2 },
    eventRepository: 'function',
    afterClose: 'EventSourcingConfigError: this EventSourcing instance is closed',
    twoModules: 'EventSourcingConfigError: EventSourcing is already attached to this DataSource: close() the other instance first',
    scoped: 'EventSourcingConfigError: @Reactor PerCallReactor must be a singleton provider',
  });
}, 120_000);
