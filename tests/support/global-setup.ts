import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Starts (or reuses) the project's PostgreSQL and Redis unless DATABASE_URL points the suite at
 * servers of its own, and hands the URLs to the test files through the environment.
 */
export default function globalSetup(): void {
  if (process.env.DATABASE_URL) return;
  const script = path.join(__dirname, '..', '..', 'scripts', 'services.sh');
  const output = execFileSync('bash', [script, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  for (const line of output.split('\n')) {
    const match = /^(DATABASE_URL|REDIS_URL)=(.*)$/.exec(line.trim());
    if (match && !process.env[match[1]]) process.env[match[1]] = match[2];
  }
}
