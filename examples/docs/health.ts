// #region imports
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventSourcing } from 'typeorm-event-sourcing';
// #endregion imports

// #region health-endpoint
/**
 * GET /health for a load balancer or Kubernetes probe: 503 while the database is down (this
 * instance cannot serve), 200 otherwise, with every part's status and figures as JSON. A
 * degraded queue or projection still answers 200: events are written, work catches up later.
 */
export function healthServer(es: EventSourcing): Server {
  return createServer(async (request, response) => {
    if (request.method !== 'GET' || request.url !== '/health') {
      response.writeHead(404).end();
      return;
    }
    const health = await es.health({ timeout: 1000, outboxMaxAgeMs: 60_000 });
    response.writeHead(health.status === 'down' ? 503 : 200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(health));
  });
}
// #endregion health-endpoint

/** docs/observability.md: the endpoint on a free loopback port, asked once. */
export async function run(es: EventSourcing): Promise<{ code: number; body: unknown }> {
  const server = healthServer(es);
  // #region listen
  server.listen(0, '127.0.0.1'); // loopback only: put it behind your own authentication or network rules
  // #endregion listen
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    return { code: response.status, body: await response.json() };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
