import { EventSourcingConfigError } from 'typeorm-event-sourcing';
import { redisConnectionFromUrl } from '../../src/reactors/redis-connection';

/**
 * Defect 4 of the hardening issue: a Redis URL was read as host and port only, so rediss:// went
 * over plain TCP, the database number, user and query options were dropped, and a scheme the
 * library does not know was taken for Redis. These pin down what each part of a URL becomes.
 * The real TLS round trip is in tests/integration/redis-url.test.ts.
 */

/** The error `fn` throws; fails the test if it does not throw. */
function thrownBy(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('redisConnectionFromUrl', () => {
  test('redis:// with user, a percent-encoded password, port and database path', () => {
    expect(redisConnectionFromUrl('redis://user:p%40ss@host:6390/3')).toEqual({
      host: 'host',
      port: 6390,
      username: 'user',
      password: 'p@ss',
      db: 3,
    });
  });

  test('defaults: port 6379, no database, no credentials', () => {
    expect(redisConnectionFromUrl('redis://cache.internal')).toEqual({ host: 'cache.internal', port: 6379 });
  });

  test('rediss:// turns TLS on and checks the certificate against the host name', () => {
    expect(redisConnectionFromUrl('rediss://:secret@redis.example.com:6380')).toEqual({
      host: 'redis.example.com',
      port: 6380,
      password: 'secret',
      tls: { servername: 'redis.example.com' },
    });
  });

  test('rediss:// with ?rejectUnauthorized=false (a self-signed certificate) as a boolean', () => {
    expect(redisConnectionFromUrl('rediss://redis.internal:6390?rejectUnauthorized=false')).toEqual({
      host: 'redis.internal',
      port: 6390,
      tls: { servername: 'redis.internal', rejectUnauthorized: false },
    });
  });

  test('rediss:// to an IP address: TLS without an SNI name (SNI takes host names only)', () => {
    expect(redisConnectionFromUrl('rediss://127.0.0.1:6390')).toEqual({ host: '127.0.0.1', port: 6390, tls: {} });
    expect(redisConnectionFromUrl('rediss://[::1]:6390?rejectUnauthorized=false')).toEqual({ host: '::1', port: 6390, tls: { rejectUnauthorized: false } });
  });

  test('numeric query options arrive as numbers: family, db, connectTimeout', () => {
    expect(redisConnectionFromUrl('redis://host?family=6')).toEqual({ host: 'host', port: 6379, family: 6 });
    expect(redisConnectionFromUrl('redis://host?db=2')).toEqual({ host: 'host', port: 6379, db: 2 });
    expect(redisConnectionFromUrl('redis://host:7000?connectTimeout=5000')).toEqual({ host: 'host', port: 7000, connectTimeout: 5000 });
  });

  test('an IPv6 host loses its brackets', () => {
    expect(redisConnectionFromUrl('redis://[::1]:6390')).toEqual({ host: '::1', port: 6390 });
  });

  test('unix:// gives a socket path and keeps ?db', () => {
    expect(redisConnectionFromUrl('unix:///tmp/r.sock?db=1')).toEqual({ path: '/tmp/r.sock', db: 1 });
  });

  test.each(['http://user:hunter2@host:6379', 'redis+sentinel://:hunter2@host:26379/mymaster', 'ftp://user:hunter2@host'])(
    'an unknown scheme is refused without showing the password: %s',
    (url) => {
      const error = thrownBy(() => redisConnectionFromUrl(url));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      const scheme = url.slice(0, url.indexOf(':'));
      expect(error.message).toContain(`the Redis URL scheme '${scheme}:' is not supported: use redis:// (TCP), rediss:// (TLS) or unix://`);
      expect(error.message).toContain('***');
      expect(error.message).not.toContain('hunter2');
    },
  );

  test('TLS options on redis:// are refused rather than silently ignored, without the password', () => {
    const error = thrownBy(() => redisConnectionFromUrl('redis://:hunter2@host:6390?rejectUnauthorized=false'));
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe('Redis URL TLS options (rejectUnauthorized) need the rediss:// scheme (redis://:***@host:6390?rejectUnauthorized=false)');
    expect(thrownBy(() => redisConnectionFromUrl('redis://host?servername=other'))).toBeInstanceOf(EventSourcingConfigError);
  });

  test('malformed option values and URLs are refused, without the password', () => {
    const notNumber = thrownBy(() => redisConnectionFromUrl('redis://:hunter2@host?db=two'));
    expect(notNumber).toBeInstanceOf(EventSourcingConfigError);
    expect(notNumber.message).toBe('Redis URL option db=two is not a number (redis://:***@host?db=two)');
    const notBoolean = thrownBy(() => redisConnectionFromUrl('rediss://host?rejectUnauthorized=no'));
    expect(notBoolean.message).toBe('Redis URL option rejectUnauthorized=no must be true or false (rediss://host?rejectUnauthorized=no)');
    const notUrl = thrownBy(() => redisConnectionFromUrl('hunter2@nowhere'));
    expect(notUrl).toBeInstanceOf(EventSourcingConfigError);
    expect(notUrl.message).toBe('the Redis connection is not a valid URL (expected redis://, rediss:// or unix://)');
  });
});
