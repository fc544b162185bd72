import { waitForReactors } from '../../src/testing';
import { buildCli, compiled, exampleDataSource, runBin, type CliResult } from '../support/cli';
import { activeSubscription, openCliProject, type CliProject } from '../support/cli-project';

/**
 * The read commands of `typeorm-es`, run as users run it (a child process on the compiled docs
 * example DataSource): history, state, trace, stats and schema:sql, as tables and as --json.
 */

let project: CliProject;
/** Between the subscription's creation and its activation. */
let beforeActivation: Date;

beforeAll(async () => {
  await buildCli();
  project = await openCliProject('cli_read');
  // No relay: stats must find the outbox row the test leaves for one.
  project.es.worker({ relay: false });
  const { dataSource } = project;
  await activeSubscription(project, { email: 'ada@example.com', rewardTitle: 'Signed poster', stripeKey: 'sub_66123', requestId: 'req-42' });
  await waitForReactors(project.es);
  // createdAt of events has millisecond precision: a moment strictly between the two writes.
  const [{ created, activated }] = await dataSource.query(
    `SELECT min(created_at) AS created, max(created_at) AS activated FROM subscription_events WHERE subscription_id = 1`,
  );
  beforeActivation = new Date((new Date(created).getTime() + new Date(activated).getTime()) / 2);
  expect(beforeActivation.getTime()).toBeLessThan(new Date(activated).getTime());
}, 60_000);

afterAll(async () => {
  await project?.close();
});

function cli(...args: string[]): Promise<CliResult> {
  return runBin(['-d', exampleDataSource(), ...args], project.env);
}

/** A successful run: exit code 0 and nothing on stderr. */
function ok(result: CliResult): string {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return result.stdout;
}

test('history prints the events of an aggregate as a table, and as explicit objects with --json', async () => {
  const [human, json] = await Promise.all([cli('history', 'Subscription', '1'), cli('history', 'Subscription', '1', '--json')]);
  const lines = ok(human).trimEnd().split('\n');
  expect(lines[0]).toBe('Subscription 1: 2 events');
  expect(lines[1]).toMatch(/^version\s+type\s+created at\s+data\s+metadata$/);
  expect(lines[2]).toMatch(/^1\s+Subscription\.Created\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+\{"userId":1,"rewardId":1\}\s+\{\}$/);
  expect(lines[3]).toMatch(/^2\s+Subscription\.Activated\s+\S+\s+\{"stripeKey":"sub_66123"\}\s+\{"requestId":"req-42"\}$/);
  expect(lines).toHaveLength(4);

  const parsed = JSON.parse(ok(json));
  expect(parsed).toEqual({
    aggregate: 'Subscription',
    id: 1,
    events: [
      expect.objectContaining({ table: 'subscription_events', id: 1, aggregateId: 1, version: 1, type: 'Subscription.Created', data: { userId: 1, rewardId: 1 }, metadata: {} }),
      expect.objectContaining({ id: 2, version: 2, type: 'Subscription.Activated', data: { stripeKey: 'sub_66123' }, metadata: { requestId: 'req-42' } }),
    ],
  });
  const stored = await project.es.history((await import('../../examples/subscriptions/model')).Subscription, 1);
  expect(parsed.events.map((event: { createdAt: string; position: number; txId: number }) => [event.createdAt, event.position, event.txId])).toEqual(
    stored.map((event) => [event.createdAt.toISOString(), event.position, event.txId]),
  );
});

test('a module whose DataSource is a Promise, exported as default and by name, loads as one DataSource', async () => {
  const result = await runBin(['-d', compiled('tests/cli/async-data-source'), 'history', 'Subscription', '1'], project.env);
  expect(ok(result)).toMatch(/^Subscription 1: 2 events\n/);
});

test('state replays now, after a version and at a moment, in a table and as JSON', async () => {
  const [now, version1, atMoment, json] = await Promise.all([
    cli('state', 'Subscription', '1'),
    cli('state', 'Subscription', '1', '--version', '1'),
    cli('state', 'Subscription', '1', '--at', beforeActivation.toISOString()),
    cli('state', 'Subscription', '1', '--at', beforeActivation.toISOString(), '--json'),
  ]);
  const nowLines = ok(now).trimEnd().split('\n');
  expect(nowLines[0]).toBe('Subscription 1: version 2, replayed from its events');
  expect(nowLines).toEqual(expect.arrayContaining([expect.stringMatching(/^status\s+"active"$/), expect.stringMatching(/^stripeKey\s+"sub_66123"$/), expect.stringMatching(/^version\s+2$/)]));
  expect(ok(version1)).toMatch(/^Subscription 1 after version 1: version 1, replayed from its events\n/);
  expect(ok(version1)).toMatch(/^status\s+"pending"$/m);
  expect(ok(atMoment)).toContain(`Subscription 1 at ${beforeActivation.toISOString()}: version 1`);
  expect(JSON.parse(ok(json))).toEqual({
    aggregate: 'Subscription',
    id: 1,
    at: beforeActivation.toISOString(),
    version: 1,
    state: { id: 1, userId: 1, rewardId: 1, status: 'pending', stripeKey: null, activatedAt: null, version: 1 },
  });
});

test('trace shows the causation tree: the trigger-written event, the jobs, and the event a job wrote', async () => {
  const [human, json] = await Promise.all([cli('trace', 'subscription_events/2'), cli('trace', 'subscription_events/2', '--json')]);
  const lines = ok(human).trimEnd().split('\n');
  expect(lines[0]).toBe('correlation subscription_events/2: 3 events, 3 jobs');
  expect(lines[1]).toMatch(/^subscription_events\/2 {2}Subscription\.Activated {2}Subscription 1 v2 {2}\S+Z$/);
  expect(lines.slice(2)).toEqual([
    expect.stringMatching(/^├─ job NewSubscriberNotification {2}completed, 1 attempt$/),
    expect.stringMatching(/^├─ job SubscriptionConfirmation {2}completed, 1 attempt$/),
    expect.stringMatching(/^├─ job WelcomeGift {2}completed, 1 attempt$/),
    expect.stringMatching(/^├─ reward_events\/2 {2}Reward\.SubscribersRecounted {2}Reward 1 v2 {2}\S+Z {2}\(trigger\)$/),
    expect.stringMatching(/^└─ reward_events\/3 {2}Reward\.Created {2}Reward 2 v1 {2}\S+Z {2}\(async\)$/),
  ]);

  const parsed = JSON.parse(ok(json));
  expect(parsed.correlationId).toBe('subscription_events/2');
  expect(parsed.queue).toBe(project.es.queue.name);
  expect(parsed.events.map((event: { ref: string; type: string; causationId: string | null; via: string | null }) => [event.ref, event.type, event.causationId, event.via])).toEqual([
    ['subscription_events/2', 'Subscription.Activated', null, null],
    ['reward_events/2', 'Reward.SubscribersRecounted', 'subscription_events/2', 'trigger'],
    ['reward_events/3', 'Reward.Created', 'subscription_events/2', 'async'],
  ]);
  expect(parsed.events[0].jobs).toEqual([
    expect.objectContaining({ reactor: 'NewSubscriberNotification', state: 'completed', attemptsMade: 1, failedReason: null, id: expect.stringMatching(/\.NewSubscriberNotification\./) }),
    expect.objectContaining({ reactor: 'SubscriptionConfirmation', state: 'completed' }),
    expect.objectContaining({ reactor: 'WelcomeGift', state: 'completed' }),
  ]);
  expect(parsed.events[1]).toMatchObject({ data: { count: 1 }, metadata: { requestId: 'req-42', causationId: 'subscription_events/2', correlationId: 'subscription_events/2' }, jobs: [] });
});

test('trace of an event inside a chain points to the chain, and an unknown id is one error line', async () => {
  const inner = await cli('trace', 'reward_events/2');
  expect(ok(inner)).toContain('note: reward_events/2 belongs to the chain subscription_events/2; typeorm-es trace subscription_events/2 shows all of it');
  const unknown = await cli('trace', 'nothing/1');
  expect({ code: unknown.code, errorLines: unknown.errorLines, stdout: unknown.stdout }).toEqual({
    code: 2,
    errorLines: ["error: no event is nothing/1, and none carries it as its correlationId"],
    stdout: '',
  });
});

test('stats counts events per table, type and schema version, the outbox backlog and the queue by state', async () => {
  // A row the relay has not handed over yet, two minutes old (the relay in this process would
  // take it after 5 s: its grace).
  await project.dataSource.query(
    `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, created_at)
     VALUES ('subscription_events', 999, 999, 'Subscription.Activated', 'SubscriptionConfirmation', clock_timestamp() - interval '120 seconds')`,
  );
  try {
    const [human, json] = await Promise.all([cli('stats'), cli('stats', '--json')]);
    const parsed = JSON.parse(ok(json));
    expect(parsed.events).toEqual([
      { table: 'reward_events', type: 'Reward.Created', schemaVersion: 1, count: 2 },
      { table: 'reward_events', type: 'Reward.SubscribersRecounted', schemaVersion: 1, count: 1 },
      { table: 'subscription_events', type: 'Subscription.Activated', schemaVersion: 1, count: 1 },
      { table: 'subscription_events', type: 'Subscription.Created', schemaVersion: 1, count: 1 },
      { table: 'user_events', type: 'User.Registered', schemaVersion: 1, count: 1 },
    ]);
    expect(parsed.outbox).toEqual({ pending: 1, oldestPendingSeconds: expect.any(Number), enqueued: 0 });
    expect(parsed.outbox.oldestPendingSeconds).toBeGreaterThanOrEqual(120);
    expect(parsed.queue).toEqual({ name: project.es.queue.name, counts: expect.objectContaining({ completed: 3, failed: 0, waiting: 0, active: 0 }) });
    const text = ok(human);
    expect(text).toMatch(/^events: 6\ntable\s+type\s+schema version\s+count\n/);
    expect(text).toMatch(/^subscription_events\s+Subscription\.Activated\s+1\s+1$/m);
    expect(text).toMatch(/^outbox: 1 pending, oldest 1\d\d(\.\d)? s old; 0 enqueued awaiting completion$/m);
    expect(text).toContain(`queue ${project.es.queue.name}:`);
    expect(text).toMatch(/^completed\s+3$/m);
  } finally {
    await project.dataSource.query(`DELETE FROM es_outbox WHERE event_id = 999`);
  }
});

test("schema:sql prints es.schema's statements, as a script and as a JSON list", async () => {
  const [script, json] = await Promise.all([cli('schema:sql'), cli('schema:sql', '--json')]);
  expect(ok(script)).toBe(`${project.es.schema.sql()}\n`);
  expect(JSON.parse(ok(json))).toEqual({ statements: project.es.schema.statements() });
  expect(ok(script)).toContain('CREATE TRIGGER es_append_only BEFORE UPDATE OR DELETE ON "subscription_events"');
});
