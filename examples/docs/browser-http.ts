// #region imports
import { createServer, type Server } from 'node:http';
import type { EventSourcing } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
// #endregion imports

/** docs/browser.md: the event browser in a plain node:http server, on the loopback interface. */
export function browserServer(es: EventSourcing): Server {
  // #region http
  // Read-only (the default), under /browser; anything else gets the server's own 404.
  const browser = createEventBrowser(es, { basePath: '/browser' });
  const server = createServer((request, response) => browser(request, response, () => response.writeHead(404).end()));
  server.listen(0, '127.0.0.1'); // loopback only: reach it through an SSH tunnel or your authenticating proxy
  // #endregion http
  return server;
}
