import { HttpError } from './http-error';

/**
 * The browser's addresses, relative to its base path. They are part of its interface (bookmarks,
 * bull-board's `eventUrl`, links in alerts), so they stay as they are:
 *
 *   GET  /                              aggregates
 *   GET  /aggregates/<Name>?id=<id>     redirect to the aggregate's page (the "open by id" form)
 *   GET  /aggregates/<Name>/<id>        an aggregate: row, verify status, history with diffs
 *   GET  /events/<table>/<id>           an event: data, metadata, causation, correlation, jobs
 *   GET  /feed                          every event, filtered, keyset-paginated
 *   GET  /reactors                      outbox backlog, queue counts, failed jobs per reactor
 *   POST /jobs/<jobId>/retry            retry a failed job (readOnly: false only)
 */
export type Route =
  | { readonly page: 'aggregates' | 'feed' | 'reactors' }
  | { readonly page: 'openAggregate'; readonly name: string }
  | { readonly page: 'aggregate'; readonly name: string; readonly id: string }
  | { readonly page: 'event'; readonly table: string; readonly id: string }
  | { readonly page: 'retry'; readonly jobId: string };

const READ = 'GET, HEAD';

/**
 * The route of a request's path segments (decoded) and method; `undefined` for an address the
 * browser does not have (the host application's, when it mounts the browser beside its own routes).
 *
 * @throws HttpError 405 for a method the browser does not take at one of its addresses.
 */
export function routeOf(method: string, segments: readonly string[], readOnly: boolean): Route | undefined {
  const route = match(segments, readOnly);
  if (!route) return undefined;
  const allowed = route.page === 'retry' ? 'POST' : READ;
  if (!allowed.split(', ').includes(method)) throw new HttpError(405, `${method} is not allowed here (${allowed} is)`, { allow: allowed });
  return route;
}

function match(segments: readonly string[], readOnly: boolean): Route | undefined {
  const [first, second, third, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (first === undefined) return { page: 'aggregates' };
  if ((first === 'feed' || first === 'reactors') && second === undefined) return { page: first };
  if (first === 'aggregates' && second !== undefined) return third === undefined ? { page: 'openAggregate', name: second } : { page: 'aggregate', name: second, id: third };
  if (first === 'events' && second !== undefined && third !== undefined) return { page: 'event', table: second, id: third };
  // Without the action, its address does not exist.
  if (!readOnly && first === 'jobs' && second !== undefined && third === 'retry') return { page: 'retry', jobId: second };
  return undefined;
}
