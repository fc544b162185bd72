// #region imports
import { timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { EventSourcing } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
// #endregion imports

// #region basic-auth
/**
 * HTTP basic authentication for the operators' pages. Any authentication your application has
 * (a session, SSO, a reverse proxy) does the same job: the browser has none of its own.
 */
export function requireOperator(user: string, password: string) {
  const expected = Buffer.from(`Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`);
  return (request: Request, response: Response, next: NextFunction) => {
    const given = Buffer.from(request.headers.authorization ?? '');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    response.set('www-authenticate', 'Basic realm="operators", charset="UTF-8"').status(401).send('Operators only');
  };
}
// #endregion basic-auth

/** docs/browser.md: the event browser under /admin of an Express application, for operators only. */
export function adminApp(es: EventSourcing, operator: { user: string; password: string }): express.Express {
  // #region mount
  const app = express();
  app.use('/admin', requireOperator(operator.user, operator.password));
  // basePath is where the browser is mounted: every link and form starts with it. Its pages are
  // /admin/, /admin/feed, /admin/reactors, /admin/aggregates/..., /admin/events/<table>/<id>;
  // other paths under /admin go on to the application's routes (bull-board at /admin/queues, say,
  // whose eventUrl can then be (event) => `/admin/events/${event.table}/${event.id}`).
  app.use('/admin', createEventBrowser(es, { basePath: '/admin', readOnly: false }));
  // #endregion mount
  return app;
}
