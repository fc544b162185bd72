import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freshDatabase } from '../support/database';
import { obliterateQueue } from '../support/processes';
import { buildOnce } from '../support/test-build';

/**
 * Beside @nestjs/bullmq's BullModule (compiled Nest program in a child process: NestJS 12 is
 * ESM-only): a reactor queue without a connection takes BullModule.forRoot's (Redis is not on the
 * default port here, so the job runs only if it does), and @InjectQueue(name) gets the same queue.
 */
test('the reactor queue reuses BullModule.forRoot\'s connection and is the queue @InjectQueue(name) gets', async () => {
  const dir = await buildOnce('nestjs', 'tests/nestjs/tsconfig.json', ['src', 'tests/nestjs']);
  const queueName = `nestjs-bullmq-${process.pid}-${Date.now()}`;
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
  const run = spawnSync(process.execPath, [path.join(dir, 'tests', 'nestjs', 'bullmq-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, REDIS_URL: redisUrl, DATABASE_URL: await freshDatabase('nestjs_bullmq'), QUEUE_NAME: queueName },
    timeout: 60_000,
  });
  await obliterateQueue(queueName, redisUrl);
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({ runs: 1, sameQueue: true, completed: 1, port: Number(new URL(redisUrl).port) });
}, 120_000);
