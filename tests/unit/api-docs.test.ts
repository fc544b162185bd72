import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** `npm run docs` must stay warning-free: every public export of both entry points documented. */
test('TypeDoc finds every public export documented (treatWarningsAsErrors, validation.notDocumented)', () => {
  const root = path.join(__dirname, '..', '..');
  const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const result = spawnSync(process.execPath, [typedoc, '--emit', 'none'], { cwd: root, encoding: 'utf8' });
  expect(result.stdout + result.stderr).not.toMatch(/warning|error/i);
  expect(result.status).toBe(0);
}, 120_000);
