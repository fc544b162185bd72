import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { buildNest } from '../support/nest-child';

/**
 * Misuse of the Nest integration fails where it is written, with the library's errors: a
 * @Reactor that says neither (or both) of async and trigger, or names no event class, throws
 * UsageError at decoration; forFeature of a class that is no aggregate throws
 * EventSourcingConfigError naming it; forRootAsync without useFactory is refused.
 * (src/nestjs loads @nestjs/common, ESM-only, so this runs compiled in a child process.)
 */

test('@Reactor, forFeature and forRootAsync misuse throws named errors at definition', async () => {
  const dir = await buildNest();
  const run = spawnSync(process.execPath, [path.join(dir, 'tests', 'nestjs', 'errors-app.js')], { encoding: 'utf8', timeout: 30_000 });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const usage = { usage: true, config: false, code: 'USAGE' };
  expect(JSON.parse(run.stdout)).toEqual({
    neither: { ...usage, message: '@Reactor: options must say { async: true } or { trigger: true }' },
    both: { ...usage, message: '@Reactor: options must say { async: true } or { trigger: true }' },
    noEvents: { ...usage, message: '@Reactor: events must be one event class or an array of them' },
    notAggregate: {
      usage: false,
      config: true,
      code: expect.any(String),
      message: 'EventSourcingModule.forFeature: NotAnAggregate is not an @Aggregate() class',
    },
    noFactory: { usage: false, config: true, code: expect.any(String), message: 'EventSourcingModule.forRootAsync needs a useFactory function' },
  });
}, 60_000);
