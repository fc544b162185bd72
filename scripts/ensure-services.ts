import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** scripts/services.sh, found upwards from here (this file also runs compiled, from another folder). */
function servicesScript(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'scripts', 'services.sh');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error('scripts/services.sh not found above ' + __dirname);
  }
}

/**
 * The URLs of the PostgreSQL and Redis the demo and the tests use: DATABASE_URL and REDIS_URL
 * when set, else the project's own servers, started (or reused) by scripts/services.sh.
 */
export function ensureServices(): { databaseUrl: string; redisUrl: string } {
  if (!process.env.DATABASE_URL) {
    const output = execFileSync('bash', [servicesScript(), 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    for (const line of output.split('\n')) {
      const match = /^(DATABASE_URL|REDIS_URL)=(.*)$/.exec(line.trim());
      if (match && !process.env[match[1]]) process.env[match[1]] = match[2];
    }
  }
  return { databaseUrl: process.env.DATABASE_URL!, redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380' };
}
