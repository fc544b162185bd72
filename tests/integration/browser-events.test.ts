import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { Account, AccountDeposited, AccountFrozen, AccountOpened, Ledger, LedgerEntryPosted } from '../support/browser-model';
import { browserWorld, serve, type ServedBrowser } from '../support/browser-server';
import { runReactors } from '../support/run-reactors';

/**
 * An event's page: data and metadata as stored, its cause and what it caused (trigger and async),
 * its correlation tree across aggregates, and its reactor jobs with their state in BullMQ.
 */

let world: Awaited<ReturnType<typeof browserWorld>>;
let browser: ServedBrowser;
let account: Account;
let opened: AccountOpened;
let unlucky: AccountDeposited;
let lucky: AccountDeposited;
let frozen: AccountFrozen;

beforeAll(async () => {
  world = await browserWorld('browser_events');
  browser = await serve(createEventBrowser(world.es));
  opened = await world.es.append(AccountOpened.build({ owner: 'Ada', metadata: { requestId: 'req-1' } }));
  account = await world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });
  lucky = await world.es.append(AccountDeposited.build({ account, amount: 7 }));
  unlucky = await world.es.append(AccountDeposited.build({ account, amount: 13, metadata: { requestId: 'req-2', operator: { name: 'Grace', roles: ['admin'] } } }));
  frozen = await world.es.append(AccountFrozen.build({ account, reason: 'chargeback' }));
  // AuditDeposit refuses 13 on both of its attempts: that job ends failed.
  await runReactors(world.es, { relay: true, allowFailures: true });
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

async function ledgerEventCausedBy(cause: string): Promise<{ id: string; version: number }> {
  const [row] = await world.dataSource.query(`SELECT id::text AS id, version FROM ledger_events WHERE metadata ->> 'causationId' = $1`, [cause]);
  return row;
}

test('data and metadata as stored, the aggregate, and the async reactor jobs with their state, attempts and reason', async () => {
  const page = await browser.get(`/events/account_events/${unlucky.id}`);
  expect(page.status).toBe(200);
  expect(page.text).toContain(
    `Account.Deposited account_events/${unlucky.id} Aggregate Account ${account.id} , version 3 Created at (UTC) ${unlucky.createdAt.toISOString()} ` +
      `Position, transaction ${unlucky.position}, ${unlucky.txId} Schema version 1 Correlation account_events/${unlucky.id}`,
  );
  expect(page.body).toContain(`<pre>{\n  &quot;amount&quot;: 13\n}</pre>`);
  // As jsonb stores it: keys by length, then bytes.
  expect(page.body).toContain(
    `<pre>{\n  &quot;operator&quot;: {\n    &quot;name&quot;: &quot;Grace&quot;,\n    &quot;roles&quot;: [\n      &quot;admin&quot;\n    ]\n  },\n  &quot;requestId&quot;: &quot;req-2&quot;\n}</pre>`,
  );
  const jobs = await world.es.queue.getJobs(['completed', 'failed']);
  const audit = jobs.find((job) => job.data.id === unlucky.id && job.name === 'AuditDeposit')!;
  const post = jobs.find((job) => job.data.id === unlucky.id && job.name === 'PostToLedger')!;
  expect(page.text).toContain(
    // In the dispatcher's order of the reactors.
    `Reactor jobs Reactor State Attempts Failed reason Processed on Finished on Job id ` +
      `PostToLedger completed 1 ${new Date(post.processedOn!).toISOString()} ${new Date(post.finishedOn!).toISOString()} ${post.id} ` +
      `AuditDeposit failed 2 audit refused the amount 13 <unlucky> & "cursed" ${new Date(audit.processedOn!).toISOString()} ${new Date(audit.finishedOn!).toISOString()} ${audit.id} Data`,
  );
  expect(page.body).toContain('<span class="state bad">failed</span>');
  expect(page.body).toContain('<span class="state ok">completed</span>');
  // Read-only by default: no retry form.
  expect(page.body).not.toContain('<form class="inline" method="post"');
  expect(page.body).toContain(`<a href="/aggregates/Account/${account.id}#v3">Account ${account.id}</a>`);
});

test('causation: the ledger entry an async reactor wrote names the deposit as its cause, and the deposit lists it', async () => {
  const posted = await ledgerEventCausedBy(`account_events/${lucky.id}`);
  const deposit = await browser.get(`/events/account_events/${lucky.id}`);
  expect(deposit.text).toContain('Caused by Nothing recorded: not written by a reactor.');
  expect(deposit.text).toMatch(new RegExp(`Caused ledger_events/${posted.id} Ledger.EntryPosted Ledger 1 v${posted.version} \\S+Z \\(async\\) Correlation`));
  const entry = await browser.get(`/events/ledger_events/${posted.id}`);
  expect(entry.text).toMatch(new RegExp(`Caused by account_events/${lucky.id} Account.Deposited Account ${account.id} v2 ${lucky.createdAt.toISOString()} Caused No event names this one as its cause.`));
  expect(entry.text).toContain(`Correlation account_events/${lucky.id}`);
  expect(entry.text).toContain('"causationId": "account_events/' + lucky.id + '"');
  expect(entry.text).toContain('Reactor jobs No async reactor job: no async reactor is registered for this type.');
});

test('the correlation tree spans aggregates, marks trigger and async children, and highlights the event shown', async () => {
  const freezePosted = await ledgerEventCausedBy(`account_events/${frozen.id}`);
  const page = await browser.get(`/events/ledger_events/${freezePosted.id}`);
  expect(page.text).toContain(
    `Correlation account_events/${frozen.id} account_events/${frozen.id} Account.Frozen Account ${account.id} v4 ${frozen.createdAt.toISOString()} ` +
      `ledger_events/${freezePosted.id} Ledger.EntryPosted Ledger 1 v${freezePosted.version}`,
  );
  expect(page.text).toMatch(/v\d+ \S+Z \(trigger\)$/);
  expect(page.body).toMatch(new RegExp(`<ul class="tree"><li>.*account_events/${frozen.id}.*<ul><li><span class="current"><a href="/events/ledger_events/${freezePosted.id}">`));
  // A further event caused by the posted entry is drawn under it: a chain three deep.
  const ledger = await world.dataSource.manager.findOneByOrFail(Ledger, { id: 1 });
  const third = await world.es.withMetadata({ causationId: `ledger_events/${freezePosted.id}`, correlationId: `account_events/${frozen.id}` }, () =>
    world.es.append(LedgerEntryPosted.build({ ledger, account: account.id, amount: 1 })),
  );
  const root = await browser.get(`/events/account_events/${frozen.id}`);
  expect(root.body).toMatch(
    new RegExp(`<ul class="tree"><li><span class="current">.*account_events/${frozen.id}.*<ul><li>.*ledger_events/${freezePosted.id}.*\\(trigger\\).*<ul><li>.*ledger_events/${third.id}.*\\(async\\)</span></li></ul></li></ul></li></ul>`),
  );
  const lonely = await browser.get(`/events/account_events/${opened.id}`);
  expect(lonely.text).toContain('This event is alone in its correlation.');
});

test("a job the queue no longer holds is shown as missing, found by the id computed from the event", async () => {
  const [job] = (await world.es.queue.getJobs(['completed'])).filter((candidate) => candidate.data.id === lucky.id && candidate.name === 'PostToLedger');
  await job.remove();
  const page = await browser.get(`/events/account_events/${lucky.id}`);
  expect(page.text).toContain(`PostToLedger missing 0 ${job.id} AuditDeposit completed 1 `);
  expect(page.text).toContain('missing: not in the queue (still in the outbox, completed longer ago than the queue keeps jobs, or removed).');
});

test('unknown events tables and ids give a 404 page, malformed ids a 400 page', async () => {
  const table = await browser.get('/events/no_such_events/1');
  expect(table.status).toBe(404);
  expect(table.text).toContain("Events table 'no_such_events' was not found");
  // An aggregate's own table is not an events table.
  expect((await browser.get('/events/account/1')).status).toBe(404);
  const id = await browser.get('/events/account_events/99999999');
  expect(id.status).toBe(404);
  expect(id.text).toContain('Event account_events/99999999 was not found');
  for (const bad of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
    const page = await browser.get(`/events/account_events/${bad}`);
    expect(page.status).toBe(400);
    expect(page.text).toContain(`Bad parameter id: must be a positive integer, got '${bad}'`);
  }
});
