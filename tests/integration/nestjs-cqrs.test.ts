import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freshDatabase } from '../support/database';
import { obliterateQueue } from '../support/processes';
import { buildOnce } from '../support/test-build';

/**
 * The @nestjs/cqrs bridge (compiled Nest program in a child process: NestJS 12 is ESM-only):
 * with `cqrsEventsHandlers: true`, an existing @EventsHandler of an event class runs as a durable
 * async reactor (a job after commit, retried when it throws), with its injected dependencies;
 * handlers of other events stay on the EventBus.
 */
test('an @EventsHandler of a library event runs as a retried job; one of a plain CQRS event stays on the EventBus', async () => {
  const dir = await buildOnce('nestjs', 'tests/nestjs/tsconfig.json', ['src', 'tests/nestjs']);
  const queueName = `nestjs-cqrs-${process.pid}-${Date.now()}`;
  const run = spawnSync(process.execPath, [path.join(dir, 'tests', 'nestjs', 'cqrs-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_cqrs'), QUEUE_NAME: queueName },
    timeout: 60_000,
  });
  await obliterateQueue(queueName, process.env.REDIS_URL ?? 'redis://127.0.0.1:6380');
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    lines: ['welcome sub_cqrs (attempt 2)', 'login ada'],
    jobs: [{ name: 'WelcomeOnActivation', attemptsMade: 2 }],
  });
}, 120_000);
