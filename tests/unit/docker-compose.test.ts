import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/** No Docker engine runs here: the compose file is checked by reading it. */
const compose = parse(readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8'));

test('PostgreSQL and Redis are published on loopback at the ports the scripts use', () => {
  expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'redis', 'worker']);
  expect(compose.services.postgres.ports).toEqual(['127.0.0.1:5433:5432']);
  expect(compose.services.redis.ports).toEqual(['127.0.0.1:6380:6379']);
  const services = readFileSync(path.join(__dirname, '..', '..', 'scripts', 'services.sh'), 'utf8');
  expect(services).toContain('PG_PORT=${PG_PORT:-5433}');
  expect(services).toContain('REDIS_PORT=${REDIS_PORT:-6380}');
});

test('each server has a health check and a named volume', () => {
  expect(compose.services.postgres.healthcheck.test).toEqual(['CMD-SHELL', 'pg_isready -U postgres']);
  expect(compose.services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
  expect(compose.services.postgres.volumes).toEqual(['pgdata:/var/lib/postgresql/data']);
  expect(compose.services.redis.volumes).toEqual(['redisdata:/data']);
  expect(Object.keys(compose.volumes).sort()).toEqual(['pgdata', 'redisdata']);
  expect(compose.services.postgres.environment).not.toHaveProperty('POSTGRES_PASSWORD');
});

test('Redis runs as BullMQ requires: append-only file on (jobs survive a restart), no eviction', () => {
  const command: string[] = compose.services.redis.command;
  const option = (name: string) => command[command.indexOf(name) + 1];
  expect(command[0]).toBe('redis-server');
  expect(option('--appendonly')).toBe('yes');
  expect(option('--appendfsync')).toBe('everysec');
  expect(option('--maxmemory-policy')).toBe('noeviction');
  expect(command).not.toContain('--save');
  expect(compose.services.redis.volumes).toEqual(['redisdata:/data']);
});

test('the optional worker runs the demo worker once both servers are healthy', () => {
  const worker = compose.services.worker;
  expect(worker.profiles).toEqual(['worker']);
  expect(worker.command.join(' ')).toContain('npm run demo:worker');
  expect(worker.depends_on).toEqual({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
  expect(worker.environment).toEqual({ DATABASE_URL: 'postgres://postgres@postgres:5432/postgres', REDIS_URL: 'redis://redis:6379' });
  const scripts = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).scripts;
  expect(scripts['demo:worker']).toContain('examples/subscriptions/worker.js');
});
