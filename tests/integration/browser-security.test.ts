import { EventSourcing, EventSourcingConfigError, UsageError } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import { Account, AccountMemoWritten, AccountOpened, browserEntities } from '../support/browser-model';
import { browserWorld, serve, type FetchedPage, type ServedBrowser } from '../support/browser-server';

/**
 * What the browser must never do: run a value as markup, show a driver's error, serve a page a
 * script could run in, take a method it does not need.
 */

const HOSTILE = `<script>alert(1)</script> "double" 'single' '; DROP TABLE account; -- & <img src=x onerror=alert(2)> 🦀`;

let world: Awaited<ReturnType<typeof browserWorld>>;
let browser: ServedBrowser;
let account: Account;
let memo: AccountMemoWritten;

beforeAll(async () => {
  world = await browserWorld('browser_security');
  browser = await serve(createEventBrowser(world.es));
  const opened = await world.es.append(AccountOpened.build({ owner: HOSTILE, metadata: { [HOSTILE]: HOSTILE, correlationId: HOSTILE } }));
  account = await world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });
  memo = await world.es.append(AccountMemoWritten.build({ account, memo: HOSTILE }));
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** Escaped in the markup, and read back as `shown` (the value as text, or as JSON). */
function expectEscaped(page: FetchedPage, shown: string): void {
  expect(page.body).not.toMatch(/<script|<img|onerror=alert\(2\)>/i);
  expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  expect(page.text).toContain(shown);
}

test('hostile data, metadata, columns and correlation ids are shown as text on every page', async () => {
  const pages = [
    await browser.get(`/aggregates/Account/${account.id}`),
    await browser.get(`/events/account_events/${memo.id}`),
    await browser.get(`/events/account_events/${memo.id - 1}`),
    await browser.get('/feed'),
    await browser.get(`/feed?correlation=${encodeURIComponent(HOSTILE)}`),
  ];
  for (const page of pages) {
    expect(page.status).toBe(200);
    expect(page.body).not.toMatch(/<script|<img/i);
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  }
  expectEscaped(pages[0], JSON.stringify(HOSTILE));
  expect(pages[0].text).toContain(`memo: null → ${JSON.stringify(HOSTILE)}`);
  // The event page shows metadata as JSON: the hostile key and value, escaped in a <pre>.
  expect(pages[2].text).toContain(`${JSON.stringify(HOSTILE)}: ${JSON.stringify(HOSTILE)}`);
  // The correlation filter echoes the value into an attribute, escaped, and finds the event.
  expect(pages[4].body).toContain(`name="correlation" value="&lt;script&gt;alert(1)&lt;/script&gt; &quot;double&quot; &#39;single&#39;`);
  expect(pages[4].body).toContain(`/events/account_events/${memo.id - 1}`);
  // The quote in the stored values ended nothing: the table is still there, with the value.
  const [stored] = await world.dataSource.query('SELECT owner, memo FROM account WHERE id = $1', [account.id]);
  expect(stored).toEqual({ owner: HOSTILE, memo: HOSTILE });
});

test('hostile paths and parameters come back escaped in 404 and 400 pages', async () => {
  const notFound = await browser.get(`/aggregates/${encodeURIComponent(HOSTILE)}/1`);
  expect(notFound.status).toBe(404);
  expectEscaped(notFound, `Aggregate type '${HOSTILE}' was not found`);
  const badId = await browser.get(`/aggregates/Account/${encodeURIComponent('<script>alert(1)</script>')}`);
  expect(badId.status).toBe(400);
  expect(badId.body).toContain('got &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;');
  const badDate = await browser.get(`/feed?from=${encodeURIComponent('"><script>alert(1)</script>')}`);
  expect(badDate.status).toBe(400);
  expect(badDate.body).not.toContain('<script');
  const badPath = await browser.get('/events/%E0%A4%A/1');
  expect(badPath.status).toBe(400);
  expect(badPath.text).toContain('Bad parameter path: is not valid percent-encoding');
  expect((await browser.get('/nothing/here')).status).toBe(404);
});

test('every answer, pages and errors alike, forbids scripts, sniffing, framing and caching', async () => {
  for (const path of ['/', '/feed', '/reactors', `/aggregates/Account/${account.id}`, '/aggregates/Nope/1', '/feed?limit=x']) {
    const page = await browser.get(path);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('same-origin');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.body).toMatch(/^<!doctype html>/);
  }
  const head = await fetch(`${browser.url}/feed`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
  expect(await head.text()).toBe('');
  for (const method of ['PUT', 'DELETE', 'PATCH', 'POST']) {
    const refused = await fetch(`${browser.url}/feed`, { method });
    expect([method, refused.status, refused.headers.get('allow')]).toEqual([method, 405, 'GET, HEAD']);
  }
});

test('an unexpected error gives a 500 page without its message; onError gets it', async () => {
  const dataSource = await testDataSource('browser_security_500', browserEntities);
  const es = await EventSourcing.attach(dataSource);
  const reported: unknown[] = [];
  const broken = await serve(createEventBrowser(es, { onError: (error) => reported.push(error) }));
  try {
    // The pool is gone: every query fails the way a lost database does.
    await dataSource.destroy();
    const page = await broken.get('/');
    expect(page.status).toBe(500);
    expect(page.text).toContain('500 Internal server error The page could not be made. The error was reported to the application.');
    expect(reported).toHaveLength(1);
    const message = (reported[0] as Error).message;
    expect(message.length).toBeGreaterThan(0);
    expect(page.body).not.toContain(message);
    expect(page.body).not.toMatch(/\s+at .+:\d+:\d+/);
  } finally {
    await broken.close();
    await es.close();
  }
});

test('bad options and a closed instance are refused when the browser is made', async () => {
  const usage = [
    () => createEventBrowser(world.es, { basePath: 'admin' }),
    () => createEventBrowser(world.es, { basePath: '/admin?x=1' }),
    () => createEventBrowser(world.es, { readOnly: 'no' as never }),
    () => createEventBrowser(world.es, { pageSize: 0 }),
    () => createEventBrowser(world.es, { onError: 'log' as never }),
    () => createEventBrowser({} as never),
  ].map((make) => {
    try {
      make();
      return undefined;
    } catch (error) {
      return error;
    }
  });
  for (const error of usage) expect(error).toBeInstanceOf(UsageError);
  expect((usage[0] as Error).message).toBe(`createEventBrowser: basePath must be '' or a path such as '/admin/events', got "admin"`);
  expect((usage[5] as Error).message).toBe('createEventBrowser: es must be an EventSourcing instance (from EventSourcing.attach)');
  const dataSource = await testDataSource('browser_security_closed', browserEntities);
  const es = await EventSourcing.attach(dataSource);
  await es.close();
  try {
    const closed = await rejectionOf((async () => createEventBrowser(es))());
    expect(closed).toBeInstanceOf(EventSourcingConfigError);
  } finally {
    await dataSource.destroy();
  }
});
