import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { freshDatabase } from '../support/database';
import { buildOnce } from '../support/test-build';

/**
 * With @nestjs-cls/transactional, `currentManager` makes es.append and commands join the
 * request's transaction: both writes commit together, or roll back together with the method that
 * threw after them (compiled Nest program in a child process: NestJS 12 is ESM-only).
 */
test('es.append and a command join the @Transactional() method\'s transaction, and roll back with it', async () => {
  const dir = await buildOnce('nestjs', 'tests/nestjs/tsconfig.json', ['src', 'tests/nestjs']);
  const run = spawnSync(process.execPath, [path.join(dir, 'tests', 'nestjs', 'transactions-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('nestjs_transactions') },
    timeout: 60_000,
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    committed: { seenInside: 2 },
    afterCommit: { rows: 1, events: 2 },
    failure: 'the request failed after both writes',
    afterRollback: { rows: 1, events: 2 },
    alone: 1,
  });
}, 120_000);
