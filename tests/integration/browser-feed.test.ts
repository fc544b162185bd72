import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { Account, AccountDeposited, AccountFrozen, AccountMemoWritten, AccountOpened } from '../support/browser-model';
import { browserWorld, serve, type FetchedPage, type ServedBrowser } from '../support/browser-server';
import { runReactors } from '../support/run-reactors';

/** The feed: every events table in one order, filtered, paginated by keyset in both directions. */

let world: Awaited<ReturnType<typeof browserWorld>>;
let browser: ServedBrowser;
let accounts: Account[];
let firstDeposit: AccountDeposited;

beforeAll(async () => {
  world = await browserWorld('browser_feed');
  browser = await serve(createEventBrowser(world.es));
  accounts = [];
  for (const owner of ['Ada', 'Grace', 'Edsger']) {
    const opened = await world.es.append(AccountOpened.build({ owner }));
    accounts.push(await world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId }));
  }
  firstDeposit = await world.es.append(AccountDeposited.build({ account: accounts[0], amount: 5 }));
  await world.es.append(AccountMemoWritten.build({ account: accounts[1], memo: 'm' }));
  await world.es.append(AccountDeposited.build({ account: accounts[2], amount: 8 }));
  await world.es.append(AccountFrozen.build({ account: accounts[1], reason: 'r' }));
  await runReactors(world.es, { relay: true });
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** Every event of both tables as `<table>/<id>`, newest first in (tx_id, position) order, with a SQL condition. */
async function expected(where = 'TRUE', parameters: unknown[] = []): Promise<string[]> {
  const rows: { ref: string }[] = await world.dataSource.query(
    `SELECT ref FROM (SELECT 'account_events/' || id AS ref, tx_id, position, created_at, type, metadata, account_id AS aggregate FROM account_events
                      UNION ALL SELECT 'ledger_events/' || id, tx_id, position, created_at, type, metadata, ledger_id FROM ledger_events) e
     WHERE ${where} ORDER BY tx_id DESC, position DESC`,
    parameters,
  );
  return rows.map((row) => row.ref);
}

/** The events a feed page lists, in order (the event column, not the cause column). */
function listed(page: FetchedPage): string[] {
  return [...page.body.matchAll(/<\/a> v\d+<\/td><td><a href="\/events\/([^"]+)">/g)].map((match) => match[1]);
}

function link(page: FetchedPage, label: string): string | undefined {
  const match = new RegExp(`<a href="([^"]+)">${label}</a>`).exec(page.body);
  return match?.[1].replace(/&amp;/g, '&');
}

test('every events table in one list, newest first; walked by keyset to the end and back, without a gap or a repeat', async () => {
  const all = await expected();
  expect(all.length).toBeGreaterThan(10);
  const first = await browser.get('/feed');
  expect(first.status).toBe(200);
  expect(listed(first)).toEqual(all);
  expect(link(first, 'older →')).toBeUndefined();

  const forward: string[] = [];
  const pages: FetchedPage[] = [];
  let path: string | undefined = '/feed?limit=4';
  for (let guard = 0; path && guard < 20; guard += 1) {
    const page = await browser.get(path);
    expect(page.status).toBe(200);
    expect(listed(page).length).toBeLessThanOrEqual(4);
    forward.push(...listed(page));
    pages.push(page);
    path = link(page, 'older →');
  }
  expect(forward).toEqual(all);
  expect(pages).toHaveLength(Math.ceil(all.length / 4));
  expect(link(pages[0], '← newer')).toBeUndefined();
  expect(link(pages[1], 'older →')).toMatch(/^\/feed\?limit=4&before=\d+-\d+$/);

  const backward: string[][] = [];
  path = link(pages[pages.length - 1], '← newer');
  for (let guard = 0; path && guard < 20; guard += 1) {
    const page = await browser.get(path);
    backward.unshift(listed(page));
    path = link(page, '← newer');
  }
  expect([...backward.flat(), ...listed(pages[pages.length - 1])]).toEqual(all);
});

test('filters: type, aggregate and id, correlation (its first event included), and a time range', async () => {
  const byType = await browser.get('/feed?type=Account.Deposited');
  expect(listed(byType)).toEqual(await expected(`type = 'Account.Deposited'`));
  expect(listed(byType)).toHaveLength(2);

  const byAggregate = await browser.get(`/feed?aggregate=Account&id=${accounts[1].id}`);
  expect(listed(byAggregate)).toEqual(await expected(`ref LIKE 'account_events/%' AND aggregate = $1`, [accounts[1].id]));
  expect(listed(byAggregate)).toHaveLength(3);
  expect(listed(await browser.get('/feed?aggregate=Ledger'))).toEqual(await expected(`ref LIKE 'ledger_events/%'`));

  const root = `account_events/${firstDeposit.id}`;
  const byCorrelation = await browser.get(`/feed?correlation=${encodeURIComponent(root)}`);
  expect(listed(byCorrelation)).toEqual(await expected(`(metadata ->> 'correlationId' = $1 OR ref = $1)`, [root]));
  expect(listed(byCorrelation)).toEqual([expect.stringMatching(/^ledger_events\/\d+$/), root]);
  expect(byCorrelation.body).toContain(`value="${root}"`);

  const [{ from, to }] = await world.dataSource.query(
    `SELECT min(created_at) + interval '1 millisecond' AS "from", max(created_at) AS "to" FROM account_events`,
  );
  const range = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  const byTime = await browser.get(`/feed?${range}`);
  expect(listed(byTime)).toEqual(await expected('created_at >= $1 AND created_at < $2', [from, to]));
  // datetime-local sends no zone: read as UTC, so the same moment without its Z selects the same events.
  expect(listed(await browser.get(`/feed?from=${from.toISOString().slice(0, -1)}&to=${to.toISOString().slice(0, -1)}`))).toEqual(listed(byTime));
  expect(listed(await browser.get('/feed?from=2000-01-01&to=2000-01-02'))).toEqual([]);
  // Filters together, paginated: the cursor keeps them.
  const combined = await browser.get(`/feed?aggregate=Account&type=Account.Opened&limit=2`);
  expect(listed(combined)).toEqual((await expected(`type = 'Account.Opened'`)).slice(0, 2));
  const next = await browser.get(link(combined, 'older →')!);
  expect(listed(next)).toEqual((await expected(`type = 'Account.Opened'`)).slice(2));
  // Empty form fields are absent filters.
  expect(listed(await browser.get('/feed?type=&aggregate=&id=&from=&to=&correlation=&limit='))).toEqual(await expected());
});

test('malformed parameters give a 400 page naming the parameter', async () => {
  const cases: [string, string][] = [
    ['before=12', 'Bad parameter before: must be a cursor of the form <txId>-<position>'],
    ['after=1-x', 'Bad parameter after: must be a cursor of the form <txId>-<position>'],
    ['after=1-2&before=1-3', 'Bad parameter after: and before cannot both be given'],
    ['from=yesterday', "Bad parameter from: must be a date such as 2026-03-01 or 2026-03-01T14:30 (UTC unless an offset is given), got 'yesterday'"],
    ['to=2026-02-31', "Bad parameter to: is not a valid date: '2026-02-31'"],
    ['from=2026-03-02&to=2026-03-01', 'Bad parameter to: must be later than from'],
    ['aggregate=Nope', 'Bad parameter aggregate: names no aggregate with events (known: Account, Ledger)'],
    ['id=1', 'Bad parameter id: needs aggregate, the type of the aggregate it names'],
    ['aggregate=Account&id=one', "Bad parameter id: must be an integer (Account.id is integer), got 'one'"],
    ['limit=0', "Bad parameter limit: must be an integer from 1 to 200, got '0'"],
    ['limit=201', "Bad parameter limit: must be an integer from 1 to 200, got '201'"],
    ['type=a&type=b', 'Bad parameter type: is given more than once'],
    [`correlation=${'x'.repeat(501)}`, 'Bad parameter correlation: is longer than 500 characters'],
  ];
  for (const [query, message] of cases) {
    const page = await browser.get(`/feed?${query}`);
    expect([query, page.status]).toEqual([query, 400]);
    expect(page.text).toContain(`400 Bad request ${message}`);
  }
});
