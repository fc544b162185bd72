import { isIP } from 'node:net';
import type { ConnectionOptions } from 'bullmq';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';

/** Query options of a Redis URL whose ioredis option is a number. */
const numericOptions = new Set(['db', 'port', 'family', 'connectTimeout', 'commandTimeout', 'keepAlive', 'socketTimeout', 'maxLoadingRetryTime']);
const booleanOptions = new Set(['enableAutoPipelining', 'noDelay', 'enableReadyCheck', 'readOnly', 'lazyConnect', 'autoResubscribe', 'enableOfflineQueue']);
/** Query options that configure TLS (`?rejectUnauthorized=false`, `?servername=...`). */
const tlsOptions = new Set(['rejectUnauthorized', 'servername', 'ca', 'cert', 'key']);

function optionValue(url: URL, key: string, value: string): unknown {
  if (numericOptions.has(key)) {
    const number = Number(value);
    if (!Number.isFinite(number)) throw new EventSourcingConfigError(`Redis URL option ${key}=${value} is not a number (${redacted(url)})`);
    return number;
  }
  if (booleanOptions.has(key) || key === 'rejectUnauthorized' || key === 'tls') {
    if (value !== 'true' && value !== 'false') throw new EventSourcingConfigError(`Redis URL option ${key}=${value} must be true or false (${redacted(url)})`);
    return value === 'true';
  }
  return value;
}

/** The URL without its password, for messages. */
function redacted(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = '***';
  return copy.href;
}

/**
 * ioredis options for a Redis URL: `redis://` (plain TCP), `rediss://` (TLS, the host name
 * checked against the certificate), or `unix:///path/to/redis.sock`; user, password, database
 * (`/2` or `?db=2`) and ioredis options given as query parameters (`?family=6`,
 * `?rejectUnauthorized=false` for TLS). Any other scheme is refused rather than guessed.
 *
 * @throws EventSourcingConfigError for an unknown scheme or a malformed URL.
 */
export function redisConnectionFromUrl(text: string): ConnectionOptions {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new EventSourcingConfigError('the Redis connection is not a valid URL (expected redis://, rediss:// or unix://)');
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'redis' && scheme !== 'rediss' && scheme !== 'unix') {
    throw new EventSourcingConfigError(`the Redis URL scheme '${scheme}:' is not supported: use redis:// (TCP), rediss:// (TLS) or unix:// (${redacted(url)})`);
  }
  const options: Record<string, unknown> = {};
  if (scheme === 'unix') {
    options.path = decodeURIComponent(url.pathname);
  } else {
    options.host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    options.port = Number(url.port || 6379);
    if (url.pathname.length > 1) options.db = optionValue(url, 'db', url.pathname.slice(1));
  }
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  const tls: Record<string, unknown> = {};
  for (const [key, value] of url.searchParams) {
    if (key === 'password' || key === 'username') options[key] = value;
    else if (tlsOptions.has(key)) tls[key] = optionValue(url, key, value);
    else options[key] = optionValue(url, key, value);
  }
  if (scheme === 'rediss' || options.tls === true) {
    // SNI takes host names only: an IP address is checked against the certificate without it.
    options.tls = { ...(isIP(String(options.host)) ? {} : { servername: options.host }), ...tls };
  } else if (Object.keys(tls).length > 0) {
    throw new EventSourcingConfigError(`Redis URL TLS options (${Object.keys(tls).join(', ')}) need the rediss:// scheme (${redacted(url)})`);
  } else {
    delete options.tls;
  }
  return options as ConnectionOptions;
}
