import type { IncomingMessage } from 'node:http';
import { HttpError, badParameter } from './http-error';

/** What frameworks add to Node's request: Express and NestJS (`originalUrl`, `baseUrl`, a parsed `body`), middie (`originalUrl`). */
type FrameworkRequest = IncomingMessage & { originalUrl?: unknown; baseUrl?: unknown; body?: unknown };

/** A request's place in the browser: the link prefix and the path segments after it. */
export interface BrowserPath {
  readonly base: string;
  readonly segments: readonly string[];
  readonly query: URLSearchParams;
}

/**
 * Where a request goes, or `undefined` when its path is not under the browser's: the full path
 * (`originalUrl`, else `url`) with the base path removed, split and decoded.
 *
 * @throws HttpError 400 for a path that does not decode.
 */
export function browserPath(request: IncomingMessage, basePath: string): BrowserPath | undefined {
  const framework = request as FrameworkRequest;
  const full = typeof framework.originalUrl === 'string' ? framework.originalUrl : (request.url ?? '/');
  const base = basePath !== '' ? basePath : typeof framework.baseUrl === 'string' ? framework.baseUrl.replace(/\/$/, '') : '';
  // Split by hand: `new URL` would read `//host/...` as another host.
  const withoutFragment = full.split('#')[0];
  const queryAt = withoutFragment.indexOf('?');
  const path = queryAt < 0 ? withoutFragment : withoutFragment.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : withoutFragment.slice(queryAt + 1));
  if (!path.startsWith('/')) return undefined;
  if (base !== '' && path !== base && !path.startsWith(`${base}/`)) return undefined;
  const parts = path.slice(base.length).split('/').slice(1);
  // `/feed/` is `/feed`; the root is `/` or the base path alone.
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  let segments: string[];
  try {
    segments = parts.map((part) => decodeURIComponent(part));
  } catch {
    throw badParameter('path', 'is not valid percent-encoding');
  }
  return { base, segments, query };
}

/** Form bodies are a token and a word: anything larger is not the browser's form. */
const MAX_FORM_BYTES = 8192;

/**
 * The fields of a posted form (`application/x-www-form-urlencoded`), read from the stream, or
 * from `req.body` when a body parser (Express's `urlencoded()`) read it already.
 *
 * @throws HttpError 415 for another content type, 413 for a body over 8 KB.
 */
export async function formOf(request: IncomingMessage): Promise<URLSearchParams> {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpError(415, 'The form must be sent as application/x-www-form-urlencoded');
  const parsed = (request as FrameworkRequest).body;
  if (parsed !== null && typeof parsed === 'object' && !Buffer.isBuffer(parsed)) {
    return new URLSearchParams(Object.entries(parsed as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  }
  if (request.readableEnded) return new URLSearchParams(typeof parsed === 'string' ? parsed : '');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new HttpError(413, `The form is larger than ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
