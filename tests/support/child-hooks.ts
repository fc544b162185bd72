import { compileProcesses, killChildren } from './processes';

/**
 * The hooks of a test file that drives child processes: the scripts compiled before its first
 * test (then `setup`, within the same bound), and no child left running after the last (then
 * `teardown`). Each test's own servers, queues and databases are the file's afterEach.
 */
export function childProcessHooks(options: { setup?: () => Promise<void>; teardown?: () => Promise<void> } = {}): void {
  beforeAll(async () => {
    await compileProcesses();
    await options.setup?.();
  }, 120_000);

  afterAll(async () => {
    await killChildren();
    await options.teardown?.();
  });
}
