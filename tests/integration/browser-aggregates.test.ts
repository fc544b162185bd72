import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { recordFigure } from '../support/figures';
import { Account, AccountDeposited, AccountFrozen, AccountMemoWritten, AccountOpened, Ledger } from '../support/browser-model';
import { browserWorld, serve, textOf, type ServedBrowser } from '../support/browser-server';

/** The aggregates page and an aggregate's page: counts, the row, verify, the history with its diffs. */

let world: Awaited<ReturnType<typeof browserWorld>>;
let browser: ServedBrowser;

beforeAll(async () => {
  world = await browserWorld('browser_aggregates');
  browser = await serve(createEventBrowser(world.es));
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** The text of one row of an aggregate page's history. */
function historyRow(body: string, version: number): string {
  const start = body.indexOf(`<tr id="v${version}">`);
  if (start < 0) throw new Error(`no history row for version ${version}`);
  // A history row ends with `</td>\n</tr>`; the rows of its state table have no line break.
  return textOf(body.slice(start, body.indexOf('\n</tr>', start)));
}

async function openAccount(owner: string): Promise<Account> {
  const opened = await world.es.append(AccountOpened.build({ owner }));
  return world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });
}

test('the aggregates page lists each aggregate with exact row and event counts and its last event time', async () => {
  const account = await openAccount('Grace');
  const last = await world.es.append(AccountMemoWritten.build({ account, memo: 'first memo' }));
  const page = await browser.get('/');
  expect(page.status).toBe(200);
  const [rows] = await world.dataSource.query(`SELECT (SELECT count(*) FROM account)::int AS accounts, (SELECT count(*) FROM account_events)::int AS events`);
  expect(page.text).toContain(`Account account, account_events ${rows.accounts} ${rows.events} `);
  const lastEvent = await world.dataSource.query(`SELECT max(created_at) AS at FROM account_events`);
  expect(lastEvent[0].at.toISOString()).toBe(last.createdAt.toISOString());
  expect(page.text).toMatch(new RegExp(`Account account, account_events \\d+ \\d+ ${last.createdAt.toISOString()} Account.Deposited , Account.Frozen , Account.MemoWritten , Account.Opened`));
  expect(page.text).toMatch(/Ledger ledger, ledger_events 1 \d+ \S+Z Ledger.EntryPosted , Ledger.Opened/);
  expect(page.body).toContain('<a href="/feed?type=Account.Frozen">');
  // The "open by id" form is a GET to /aggregates/<Name>, sent on to the aggregate's address.
  const opened = await browser.get(`/aggregates/Account?id=${account.id}`);
  expect(opened.status).toBe(303);
  expect(opened.headers.get('location')).toBe(`/aggregates/Account/${account.id}`);
  expect((await browser.get('/aggregates/Account?id=abc')).text).toContain('Bad parameter id: must be an integer (Account.id is integer), got \'abc\'');
});

test("an aggregate's page shows its row, its verify status and, per event, the change and the state after it", async () => {
  const account = await openAccount('Ada');
  await world.es.append(AccountDeposited.build({ account, amount: 10 }));
  await world.es.append(AccountMemoWritten.build({ account, memo: 'VIP' }));
  await world.es.append(AccountFrozen.build({ account, reason: 'chargeback' }));
  const page = await browser.get(`/aggregates/Account/${account.id}`);
  expect(page.status).toBe(200);
  expect(page.text).toContain(`Account ${account.id} version 4 · table account · events in account_events`);
  expect(page.text).toContain('Verified : the row equals the replay of its 4 events.');
  expect(page.text).toContain(`Current row Column Value Role id ${account.id} id owner "Ada" sourced balance 10 sourced status "frozen" sourced memo "VIP" sourced updatedAt `);
  expect(page.text).toMatch(/updatedAt \S+Z not sourced version 4 version/);
  expect(historyRow(page.body, 1)).toMatch(/^1 Account.Opened account_events\/\d+ \S+Z none owner: null → "Ada" state after owner "Ada" balance 0 status "open" memo null$/);
  expect(historyRow(page.body, 2)).toMatch(/^2 Account.Deposited account_events\/\d+ \S+Z none balance: 0 → 10 state after owner "Ada" balance 10 status "open" memo null$/);
  expect(historyRow(page.body, 3)).toContain('memo: null → "VIP" state after owner "Ada" balance 10 status "open" memo "VIP"');
  expect(historyRow(page.body, 4)).toContain('status: "open" → "frozen" state after owner "Ada" balance 10 status "frozen" memo "VIP"');
  // Newest first, each linked to its event page.
  expect(page.body.indexOf('id="v4"')).toBeLessThan(page.body.indexOf('id="v1"'));
  expect(page.body).toMatch(/<a href="\/events\/account_events\/\d+">account_events\/\d+<\/a>/);
  // The ledger entry the freeze's trigger reactor wrote carries the freeze's correlation.
  const ledger = await browser.get('/aggregates/Ledger/1');
  expect(ledger.text).toMatch(/Ledger.EntryPosted ledger_events\/\d+ \S+Z account_events\/\d+ entries: \d+ → \d+/);
});

test('drift between the row and its events shows stored and replayed values; a history without a creating event shows no states', async () => {
  const account = await openAccount('Eve');
  await world.es.append(AccountDeposited.build({ account, amount: 5 }));
  await world.dataSource.query(`UPDATE account SET balance = 500 WHERE id = $1`, [account.id]);
  const drift = await browser.get(`/aggregates/Account/${account.id}`);
  expect(drift.text).toContain('Drift : the row differs from the replay of its events');
  expect(drift.text).toContain('Column Stored Replayed balance 500 5');
  // A row whose events begin with a deposit: nothing creates it, so no state can be replayed.
  const [{ id }] = await world.dataSource.query(`INSERT INTO account (owner, balance, status, version) VALUES ('Mallory', 7, 'open', 1) RETURNING id`);
  await world.dataSource.query(
    `INSERT INTO account_events (account_id, version, type, data, metadata, created_at) VALUES ($1, 1, 'Account.Deposited', '{"amount": 7}', '{}', now())`,
    [id],
  );
  const unreplayable = await browser.get(`/aggregates/Account/${id}`);
  expect(unreplayable.status).toBe(200);
  expect(unreplayable.text).toContain(
    `The history cannot be replayed, so states are not shown: MissingBaselineError: Account ${id}: its history begins with Account.Deposited (version 1), which does not create it`,
  );
  expect(historyRow(unreplayable.body, 1)).toMatch(/^1 Account.Deposited account_events\/\d+ \S+Z none not replayed$/);
  expect(unreplayable.text).toContain('Column Stored Replayed owner "Mallory" null');
});

test('unknown aggregates and ids give a 404 page; malformed ids and cursors a 400 page naming the parameter', async () => {
  const unknownType = await browser.get('/aggregates/Nope/1');
  expect(unknownType.status).toBe(404);
  expect(unknownType.text).toContain("404 Not found Aggregate type 'Nope' was not found");
  const unknownId = await browser.get('/aggregates/Account/999999');
  expect(unknownId.status).toBe(404);
  expect(unknownId.text).toContain('Account 999999 was not found');
  expect((await browser.get('/aggregates/Account/999999999999')).text).toContain("Bad parameter id: must be an integer (Account.id is integer), got '999999999999'");
  const malformed = await browser.get('/aggregates/Account/12abc');
  expect(malformed.status).toBe(400);
  expect(malformed.text).toContain("400 Bad request Bad parameter id: must be an integer (Account.id is integer), got '12abc'");
  const cursor = await browser.get('/aggregates/Ledger/1?before=x');
  expect(cursor.status).toBe(400);
  expect(cursor.text).toContain("Bad parameter before: must be an integer from 1 to 2147483647, got 'x'");
  expect((await browser.get('/aggregates/Ledger/1?after=1&after=2')).text).toContain('Bad parameter after: is given more than once');
});

test('1,000 events: the newest 100 with states equal to stateAt, older pages by keyset, and the time the page takes', async () => {
  const account = await openAccount('Bulk');
  // Written with SQL (999 events through the write path would be most of this file's time),
  // then rebuilt into the row, so that the page verifies a consistent aggregate.
  await world.dataSource.query(
    `INSERT INTO account_events (account_id, version, type, data, metadata, created_at)
     SELECT $1, v, 'Account.Deposited', jsonb_build_object('amount', v % 9 + 1), jsonb_build_object('correlationId', 'batch-' || (v / 100)), now() FROM generate_series(2, 1000) v`,
    [account.id],
  );
  await world.es.rebuild(Account, account.id);
  const path = `/aggregates/Account/${account.id}`;
  const first = await browser.get(path);
  expect(first.text).toContain('Verified : the row equals the replay of its 1000 events.');
  expect(first.body.match(/<tr id="v\d+">/g)).toHaveLength(100);
  for (const version of [1000, 950, 901]) {
    const state = (await world.es.stateAt(Account, account.id, { version }))!;
    const previous = (await world.es.stateAt(Account, account.id, { version: version - 1 }))!;
    const event = await storedEvent(account.id, version);
    expect(historyRow(first.body, version)).toBe(
      `${version} Account.Deposited account_events/${event.id} ${event.createdAt.toISOString()} batch-${Math.floor(version / 100)} ` +
        `balance: ${previous.balance} → ${state.balance} state after owner "Bulk" balance ${state.balance} status "open" memo null`,
    );
  }
  expect(first.body).toContain(`<a href="${path}?before=901">older events →</a>`);
  expect(first.body).not.toContain('newer events');
  const older = await browser.get(`${path}?before=901`);
  expect(older.body.match(/<tr id="v(\d+)">/g)!.map((row) => Number(/\d+/.exec(row)![0]))).toEqual(Array.from({ length: 100 }, (_, index) => 900 - index));
  expect(older.body).toContain(`<a href="${path}?after=900">← newer events</a>`);
  const back = await browser.get(`${path}?after=900`);
  expect(back.body.match(/<tr id="v\d+">/g)![0]).toBe('<tr id="v1000">');
  const oldest = await browser.get(`${path}?before=101`);
  expect(oldest.body.match(/<tr id="v\d+">/g)).toHaveLength(100);
  expect(oldest.body).not.toContain('older events');
  expect(historyRow(oldest.body, 1)).toContain('owner: null → "Bulk"');

  // Timed after a warm-up: the median of seven requests, whole round trips on loopback.
  for (let warm = 0; warm < 2; warm += 1) await browser.get(path);
  const times: number[] = [];
  const serverTimes: number[] = [];
  for (let run = 0; run < 7; run += 1) {
    const started = performance.now();
    const page = await browser.get(path);
    times.push(performance.now() - started);
    serverTimes.push(Number(/dur=([\d.]+)/.exec(page.headers.get('server-timing')!)![1]));
    expect(page.status).toBe(200);
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  recordFigure('browser: aggregate page of 1,000 events, median round trip', Math.round(median(times) * 10) / 10, 'ms');
  recordFigure('browser: aggregate page of 1,000 events, median server time', Math.round(median(serverTimes) * 10) / 10, 'ms');
});

async function storedEvent(accountId: number, version: number): Promise<{ id: string; createdAt: Date }> {
  const [row] = await world.dataSource.query(`SELECT id::text AS id, created_at AS "createdAt" FROM account_events WHERE account_id = $1 AND version = $2`, [accountId, version]);
  return row;
}

test('the ledger, written by reactors of two kinds, verifies like any aggregate', async () => {
  const ledger = await browser.get('/aggregates/Ledger/1');
  const row = await world.dataSource.manager.findOneByOrFail(Ledger, { id: 1 });
  expect(ledger.text).toContain(`Verified : the row equals the replay of its ${row.version} events.`);
});
