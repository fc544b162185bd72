import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * The Chromium the real-browser test drives: found, or installed with apt-get when running as
 * root (scripts/browser.sh). The first run on a fresh machine waits for the install.
 */
export function chromiumPath(): string {
  const script = path.join(__dirname, '..', '..', 'scripts', 'browser.sh');
  return execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim();
}
