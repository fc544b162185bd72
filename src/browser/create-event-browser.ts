import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import { attachedTo, EventSourcing } from '../event-sourcing';
import type { BrowserContext, PageRequest, PageResult } from './browser-context';
import { CsrfTokens } from './csrf';
import type { EventBrowserOptions, ResolvedBrowserOptions } from './event-browser-options';
import { HttpError } from './http-error';
import { errorPage, layout } from './layout';
import { aggregatePage, openAggregate } from './pages/aggregate-page';
import { aggregatesPage } from './pages/aggregates-page';
import { eventPage } from './pages/event-page';
import { feedPage, MAX_PAGE_SIZE } from './pages/feed-page';
import { reactorsPage } from './pages/reactors-page';
import { retryAction } from './pages/retry-action';
import { browserPath, formOf } from './request';
import { routeOf, type Route } from './routes';

/**
 * A Node request handler: `(req, res)` for `node:http`, `(req, res, next)` for Express, NestJS
 * and `@fastify/middie`, which call it for the paths it is mounted at. `next` is called for an
 * address that is not one of the browser's (outside the base path, or under it but unknown), so
 * the browser can share a prefix with the application's own routes; without `next` such an
 * address gets a 404 page.
 */
export type EventBrowserHandler = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void) => void;

/**
 * Every page's headers: HTML, no script of any kind may run (the pages need none), forms post to
 * this origin only, no framing (the retry button cannot be clickjacked), nothing cached.
 */
export const BROWSER_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** Masks the password of any URL in a message (`postgres://user:secret@host` -> `postgres://user:***@host`). */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi, '$1***@');
}

function defaultOnError(error: unknown): void {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  console.error(`typeorm-event-sourcing event browser: ${name}: ${maskCredentials(message)}`);
}

function resolveOptions(options: EventBrowserOptions): ResolvedBrowserOptions {
  assertObjectArgument('createEventBrowser', 'options', options);
  const { basePath = '', readOnly = true, onError = defaultOnError, pageSize = 50 } = options;
  if (typeof basePath !== 'string' || (basePath !== '' && !/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+\/?$/.test(basePath))) {
    throw new UsageError('createEventBrowser', 'basePath', `must be '' or a path such as '/admin/events', got ${JSON.stringify(basePath)}`);
  }
  if (typeof readOnly !== 'boolean') throw new UsageError('createEventBrowser', 'readOnly', `must be true or false, got ${String(readOnly)}`);
  if (typeof onError !== 'function') throw new UsageError('createEventBrowser', 'onError', `must be a function, got ${typeof onError}`);
  if (typeof pageSize !== 'number' || !Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new UsageError('createEventBrowser', 'pageSize', `must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${String(pageSize)}`);
  }
  return { basePath: basePath.replace(/\/$/, ''), readOnly, onError, pageSize };
}

async function render(context: BrowserContext, request: IncomingMessage, page: PageRequest, route: Route): Promise<PageResult> {
  switch (route.page) {
    case 'aggregates':
      return aggregatesPage(context, page);
    case 'feed':
      return feedPage(context, page);
    case 'reactors':
      return reactorsPage(context, page);
    case 'openAggregate':
      return openAggregate(context, page, route.name);
    case 'aggregate':
      return aggregatePage(context, page, route.name, route.id);
    case 'event':
      return eventPage(context, page, route.table, route.id);
    case 'retry':
      // Browsers say where a request comes from; a form on another site is refused outright.
      if (request.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, 'A form from another site cannot retry jobs');
      return retryAction(context, page, route.jobId, await formOf(request));
  }
}

function send(request: IncomingMessage, response: ServerResponse, status: number, headers: Record<string, string>, body: string, started: number): void {
  const bytes = Buffer.from(body, 'utf8');
  response.writeHead(status, {
    ...BROWSER_HEADERS,
    ...headers,
    'content-length': String(bytes.length),
    // The time the page took to make, for whoever measures (browsers' developer tools show it).
    'server-timing': `page;dur=${(performance.now() - started).toFixed(1)}`,
  });
  response.end(request.method === 'HEAD' ? undefined : bytes);
}

/**
 * The event browser: server-rendered pages over the events of `es`'s DataSource (aggregates and
 * their histories with what each event changed, events with their causes, correlations and
 * reactor jobs, a filtered feed, the reactors' backlog and failures), as a plain Node request
 * handler. The pages need no JavaScript. Your application provides authentication: mount it
 * behind your operators' login. See docs/browser.md.
 *
 * @example
 * ```ts
 * import { createEventBrowser } from 'typeorm-event-sourcing/browser';
 *
 * app.use('/admin', requireOperator, createEventBrowser(es, { basePath: '/admin' }));
 * ```
 * @throws UsageError for options of the wrong type or a malformed `basePath`.
 * @throws EventSourcingConfigError when `es` is closed.
 */
export function createEventBrowser(es: EventSourcing, options: EventBrowserOptions = {}): EventBrowserHandler {
  if (!(es instanceof EventSourcing)) throw new UsageError('createEventBrowser', 'es', 'must be an EventSourcing instance (from EventSourcing.attach)');
  const resolved = resolveOptions(options);
  const { dataSource, registry, reactors } = attachedTo(es.dataSource.manager).internals;
  const context: BrowserContext = {
    es,
    dataSource,
    definitions: [...registry.definitions].sort((a, b) => a.name.localeCompare(b.name)),
    options: resolved,
    csrf: new CsrfTokens(dataSource),
    queue: reactors.configuredQueue,
  };
  const handle = async (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void): Promise<void> => {
    const started = performance.now();
    let base = resolved.basePath;
    try {
      const path = browserPath(request, resolved.basePath);
      base = path?.base ?? base;
      const route = path && routeOf(request.method ?? 'GET', path.segments, resolved.readOnly);
      if (!path || !route) {
        // Not one of the browser's addresses: the host application's, if it has a next handler.
        if (next) return next();
        throw new HttpError(404, 'The event browser has no page at this address');
      }
      const result = await render(context, request, { base, query: path.query }, route);
      if ('redirect' in result) send(request, response, 303, { location: result.redirect }, '', started);
      else send(request, response, 200, {}, layout(base, result.title, result.section, result.body).value, started);
    } catch (error) {
      if (response.headersSent) {
        resolved.onError(error);
        response.destroy();
      } else if (error instanceof HttpError) {
        send(request, response, error.status, { ...error.headers }, errorPage(base, error.status, STATUS_TITLES[error.status], error.message).value, started);
      } else {
        // A driver error or a bug: its text is not the reader's to see (it may name hosts or
        // SQL), the application's onError gets it.
        resolved.onError(error);
        send(request, response, 500, {}, errorPage(base, 500, STATUS_TITLES[500], 'The page could not be made. The error was reported to the application.').value, started);
      }
    }
  };
  return (request, response, next) => {
    handle(request, response, next).catch((error: unknown) => {
      // Only writing the answer itself can fail here (the client went away).
      try {
        resolved.onError(error);
      } finally {
        response.destroy();
      }
    });
  };
}

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad request',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Payload too large',
  415: 'Unsupported media type',
  500: 'Internal server error',
};
