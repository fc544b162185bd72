import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { adminApp } from '../../examples/docs/browser-express';
import { browserServer } from '../../examples/docs/browser-http';
import { Account, AccountDeposited, AccountOpened } from '../support/browser-model';
import { browserWorld, retryToken, serve, textOf } from '../support/browser-server';
import { runReactors } from '../support/run-reactors';

/**
 * Mounted as docs/browser.md shows: under Express with basic authentication and a base path, in a
 * plain node:http server, and under Express without a base path (the mount path is used).
 */

let world: Awaited<ReturnType<typeof browserWorld>>;
let deposit: AccountDeposited;

beforeAll(async () => {
  world = await browserWorld('browser_mounting');
  const opened = await world.es.append(AccountOpened.build({ owner: 'Ada' }));
  const account = await world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });
  deposit = await world.es.append(AccountDeposited.build({ account, amount: 13 }));
  // A second failed job, for the second test's retry.
  await world.es.append(AccountDeposited.build({ account, amount: 13 }));
  await runReactors(world.es, { relay: true, allowFailures: true });
});

afterAll(async () => {
  await world?.close();
});

test('Express with basic auth (examples/docs/browser-express.ts): operators only, every link under /admin, retry through the form', async () => {
  const served = await serve(adminApp(world.es, { user: 'ops', password: 'correct horse' }));
  const authorization = `Basic ${Buffer.from('ops:correct horse').toString('base64')}`;
  const asOperator = { headers: { authorization } };
  try {
    const anonymous = await served.get('/admin/');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="operators", charset="UTF-8"');
    expect((await served.get('/admin/feed', { headers: { authorization: 'Basic b3BzOndyb25n' } })).status).toBe(401);

    const home = await served.get('/admin/', asOperator);
    expect(home.status).toBe(200);
    const links = [...home.body.matchAll(/(?:href|action)="([^"]+)"/g)].map((match) => match[1]);
    expect(links.length).toBeGreaterThan(5);
    for (const link of links) expect(link).toMatch(/^\/admin\//);
    const feed = await served.get('/admin/feed', asOperator);
    // The address bull-board's eventUrl gives in docs/observability.md.
    const eventPath = `/admin/events/account_events/${deposit.id}`;
    expect(feed.body).toContain(`href="${eventPath}"`);
    const event = await served.get(eventPath, asOperator);
    expect(event.text).toContain(`Account.Deposited account_events/${deposit.id}`);
    expect(event.body).toContain(`<a href="/admin/aggregates/Account/${deposit.aggregateId}#v2">`);
    // An address under /admin that is not the browser's goes on to Express (its own 404 here).
    const other = await served.get('/admin/queues', asOperator);
    expect(other.status).toBe(404);
    expect(other.headers.get('content-security-policy')).not.toContain('form-action');
    expect((await served.get('/elsewhere')).status).toBe(404);

    const failed = (await world.es.queue.getFailed()).find((job) => job.data.id === deposit.id)!;
    const token = retryToken(event.body, failed.id!)!;
    const retried = await served.post(`/admin/jobs/${failed.id}/retry`, { token, from: 'event' }, { authorization });
    expect(retried.status).toBe(303);
    expect(retried.headers.get('location')).toBe(eventPath);
    expect(await failed.getState()).toBe('waiting');
  } finally {
    await served.close();
  }
});

test('under Express without basePath the mount path is used, and a body parser before it does not break the form', async () => {
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use('/ops', createEventBrowser(world.es, { readOnly: false }));
  const served = await serve(app);
  try {
    const home = await served.get('/ops');
    expect(home.status).toBe(200);
    expect(home.body).toContain('<a href="/ops/feed">Feed</a>');
    const reactors = await served.get('/ops/reactors');
    const [failed] = await world.es.queue.getFailed();
    expect(failed).toBeDefined();
    const token = retryToken(reactors.body, failed.id!)!;
    const retried = await served.post(`/ops/jobs/${failed.id}/retry`, { token, from: 'reactors' });
    expect(retried.status).toBe(303);
    expect(retried.headers.get('location')).toBe('/ops/reactors');
    expect(await failed.getState()).toBe('waiting');
  } finally {
    await served.close();
  }
});

test('node:http (examples/docs/browser-http.ts): read-only under /browser, the rest is the server\'s', async () => {
  const server = browserServer(world.es);
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const page = await fetch(`${base}/browser/events/account_events/${deposit.id}`);
    expect(page.status).toBe(200);
    const body = await page.text();
    expect(textOf(body)).toContain('Reactor jobs');
    expect(body).not.toContain('method="post"');
    expect(body).toContain('<a href="/browser/feed">Feed</a>');
    expect((await fetch(`${base}/browser`)).status).toBe(200);
    const outside = await fetch(`${base}/elsewhere`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toBe('');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
