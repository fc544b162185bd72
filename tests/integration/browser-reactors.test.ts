import type { Job } from 'bullmq';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { Account, AccountDeposited, AccountOpened } from '../support/browser-model';
import { browserWorld, retryToken, serve, type ServedBrowser } from '../support/browser-server';
import { runReactors } from '../support/run-reactors';

/**
 * The reactors page (outbox backlog, queue counts, failed jobs per reactor) and its one action:
 * retrying a failed job, with a CSRF token, only when the browser is not read-only.
 */

let world: Awaited<ReturnType<typeof browserWorld>>;
let readOnly: ServedBrowser;
let writable: ServedBrowser;
let failed: Job[];
let deposits: AccountDeposited[];

beforeAll(async () => {
  world = await browserWorld('browser_reactors');
  readOnly = await serve(createEventBrowser(world.es));
  writable = await serve(createEventBrowser(world.es, { readOnly: false }));
  const opened = await world.es.append(AccountOpened.build({ owner: 'Ada' }));
  const account = await world.dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });
  deposits = [];
  for (const amount of [13, 7, 13]) deposits.push(await world.es.append(AccountDeposited.build({ account, amount })));
  await runReactors(world.es, { relay: true, allowFailures: true });
  failed = (await world.es.queue.getFailed()).sort((a, b) => a.data.id - b.data.id);
});

afterAll(async () => {
  await readOnly?.close();
  await writable?.close();
  await world?.close();
});

test('the outbox backlog and the age of its oldest row, as es.health() reports them', async () => {
  const empty = await readOnly.get('/reactors');
  expect(empty.text).toContain('Outbox Status ok Rows not handed to the queue 0 Oldest of them waits for none');
  // A row the relay has not handed over, written 95 s ago (no relay runs in this file now).
  await world.dataSource.query(
    `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, job_key, created_at)
     VALUES ('account_events', $1, $2, 'Account.Deposited', 'PostToLedger', gen_random_uuid(), clock_timestamp() - interval '95 seconds')`,
    [deposits[1].id, deposits[1].position],
  );
  try {
    const page = await readOnly.get('/reactors');
    expect(page.text).toMatch(/Outbox Status degraded the oldest outbox row waits for 95\d\d\d ms \(more than 30000\): is a relay running, and the queue reachable\? Rows not handed to the queue 1 Oldest of them waits for 1 min 3[56] s/);
  } finally {
    await world.dataSource.query(`DELETE FROM es_outbox`);
  }
});

test('failed jobs are listed per reactor with event, attempts and reason; read-only shows no form and takes no POST', async () => {
  expect(failed.map((job) => job.data.id)).toEqual([deposits[0].id, deposits[2].id]);
  const page = await readOnly.get('/reactors');
  expect(page.text).toContain(`Queue ${world.es.queue.name} ok waiting active delayed prioritized waiting-children completed failed 0 0 0 0 0 4 2`);
  expect(page.text).toContain(
    `Failed jobs by reactor AuditDeposit 2 failed Event Attempts Failed reason Failed at (UTC) Job id ` +
      failed
        .slice()
        .sort((a, b) => b.finishedOn! - a.finishedOn!)
        .map((job) => `account_events/${job.data.id} Account.Deposited 2 audit refused the amount 13 <unlucky> & "cursed" ${new Date(job.finishedOn!).toISOString()} ${job.id}`)
        .join(' '),
  );
  expect(page.body).not.toContain('method="post"');
  const post = await readOnly.post(`/jobs/${failed[0].id}/retry`, { token: 'x' });
  expect(post.status).toBe(404);
  const elsewhere = await readOnly.post('/reactors', {});
  expect(elsewhere.status).toBe(405);
  expect(elsewhere.headers.get('allow')).toBe('GET, HEAD');
  expect(await failed[0].getState()).toBe('failed');
});

test('retry needs a token issued for that job: missing, forged, another job\'s or cross-site are refused with 403', async () => {
  const [first, second] = failed;
  const page = await writable.get('/reactors');
  const token = retryToken(page.body, first.id!)!;
  const otherToken = retryToken(page.body, second.id!)!;
  expect(token).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
  const refusals = [
    await writable.post(`/jobs/${first.id}/retry`, {}),
    await writable.post(`/jobs/${first.id}/retry`, { token: `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` }),
    await writable.post(`/jobs/${first.id}/retry`, { token: otherToken }),
    await writable.post(`/jobs/${first.id}/retry`, { token: `${Math.floor(Date.now() / 1000) - 7200}.${token.split('.')[1]}` }),
    await writable.post(`/jobs/${first.id}/retry`, { token, from: 'reactors' }, { 'sec-fetch-site': 'cross-site' }),
  ];
  expect(refusals.map((refusal) => refusal.status)).toEqual([403, 403, 403, 403, 403]);
  expect(refusals[0].text).toContain('403 Forbidden The form has no valid token for this job (it is missing, expired, or for another job): reload the page and try again');
  expect(refusals[4].text).toContain('A form from another site cannot retry jobs');
  expect(await first.getState()).toBe('failed');
  const wrongType = await fetch(`${writable.url}/jobs/${first.id}/retry`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `token=${token}` });
  expect(wrongType.status).toBe(415);
  const get = await writable.get(`/jobs/${first.id}/retry`);
  expect(get.status).toBe(405);
  expect(get.headers.get('allow')).toBe('POST');
});

test("retry moves a failed job back to waiting and returns to its page; other databases' and unknown jobs are 404, a job not failed 409", async () => {
  const [first, second] = failed;
  const event = await writable.get(`/events/account_events/${first.data.id}`);
  const token = retryToken(event.body, first.id!)!;
  const retried = await writable.post(`/jobs/${first.id}/retry`, { token, from: 'event' });
  expect(retried.status).toBe(303);
  expect(retried.headers.get('location')).toBe(`/events/account_events/${first.data.id}`);
  expect(await first.getState()).toBe('waiting');
  expect((await writable.get(`/events/account_events/${first.data.id}`)).text).toMatch(/AuditDeposit waiting \d+ /);
  const again = await writable.post(`/jobs/${first.id}/retry`, { token });
  expect(again.status).toBe(409);
  expect(again.text).toContain(`409 Conflict Reactor job ${first.id} is waiting: only a failed job can be retried`);

  const fromReactors = await writable.post(`/jobs/${second.id}/retry`, { token: retryToken((await writable.get('/reactors')).body, second.id!)!, from: 'reactors' });
  expect(fromReactors.headers.get('location')).toBe('/reactors');
  expect(await second.getState()).toBe('waiting');

  const unknown = await writable.post(`/jobs/${encodeURIComponent(`${first.id!.split('.')[0]}.999.AuditDeposit.nope`)}/retry`, { token });
  expect(unknown.status).toBe(404);
  // A job of another database in the same queue (its id starts with that database's identity).
  const foreign = await world.es.queue.add(
    'AuditDeposit',
    { table: 'account_events', id: first.data.id, type: 'Account.Deposited', reactor: 'AuditDeposit', position: 1, key: 'k', signature: 's' },
    { jobId: '00000000-0000-4000-8000-000000000000.1.AuditDeposit.k' },
  );
  const refused = await writable.post(`/jobs/${foreign.id}/retry`, { token });
  expect(refused.status).toBe(404);
  expect(refused.text).toContain(`Reactor job ${foreign.id} was not found`);
  await foreign.remove();
});
