import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** `npm run demo`, as the README's first command runs it, twice (it must be idempotent). */
const root = path.join(__dirname, '..', '..');

test('the demo runs the talk example and prints history, time machine, verify and rebuild, twice', () => {
  for (let run = 0; run < 2; run += 1) {
    const result = spawnSync('npm', ['run', 'demo', '--silent'], { cwd: root, encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const output = result.stdout;
    expect(output).toMatch(/Created subscription \d+ \(status pending, version 1\)/);
    expect(output).toContain('Activated: status active, version 2');
    expect(output).toContain('Cancelled: status cancelled, version 3');
    expect(output).toMatch(/^1\s+Subscription\.Created\s+\{"userId":1\}\s+\{"source":"demo"\}/m);
    expect(output).toMatch(/^2\s+Subscription\.Activated\s+\{"stripeKey":"sub_66123"\}\s+\{"notificationId":33456\}/m);
    expect(output).toMatch(/Time machine: at \S+ the subscription was active \(version 2\)/);
    expect(output).toContain("Verify after tampering with the row: status is 'hacked', events say 'cancelled'");
    expect(output).toContain('verify now reports 0 differences.');
    expect(output).not.toMatch(/Error|at .*\.js:\d+/);
  }
}, 180_000);
