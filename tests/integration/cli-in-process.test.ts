import { Writable } from 'node:stream';
import type { DataSource } from 'typeorm';
import { admin } from '../../examples/cli/admin';
import { dispatcher } from '../../examples/subscriptions/dispatcher';
import { allEntities } from '../../examples/subscriptions/entities';
import { Subscription } from '../../examples/subscriptions/model';
import { SentMail } from '../../examples/subscriptions/sent-mail';
import { EventSourcing, runCli } from '../../src';
import { activeSubscription } from '../support/cli-project';
import { testDataSource } from '../support/database';
import { waitFor } from '../support/processes';

/**
 * runCli: the same commands mounted in an application's process, on the instance it attached.
 * It returns the exit code and never exits the process; it leaves the instance open.
 */

let dataSource: DataSource;

beforeAll(async () => {
  dataSource = await testDataSource('cli_in_process', allEntities);
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: process.env.REDIS_URL } });
  try {
    for (const [index, email] of ['ada@example.com', 'bob@example.com', 'cy@example.com'].entries()) {
      await activeSubscription({ dataSource, es }, { email, rewardTitle: `Reward ${index + 1}`, stripeKey: `sub_${index + 1}`, requestId: `req-${index + 1}` });
    }
  } finally {
    await es.close();
  }
});

afterAll(async () => {
  await dataSource?.destroy();
});

/** A stream that keeps what is written to it; `tty` makes it look like a terminal. */
function capture(tty = false): Writable & { text: string; isTTY?: boolean; columns?: number } {
  const stream = new Writable({
    write(chunk, _encoding, done) {
      stream.text += String(chunk);
      done();
    },
  }) as Writable & { text: string; isTTY?: boolean; columns?: number };
  stream.text = '';
  if (tty) Object.assign(stream, { isTTY: true, columns: 100 });
  return stream;
}

test("the docs' admin entry runs a command on the application's DataSource and returns its exit code", async () => {
  const stdout = capture();
  const stderr = capture();
  expect(await admin(dataSource, ['history', 'Subscription', '2', '--json'], { stdout, stderr })).toBe(0);
  expect(stderr.text).toBe('');
  expect(JSON.parse(stdout.text)).toEqual({
    aggregate: 'Subscription',
    id: 2,
    events: [expect.objectContaining({ type: 'Subscription.Created', version: 1 }), expect.objectContaining({ type: 'Subscription.Activated', data: { stripeKey: 'sub_2' } })],
  });
});

test('errors come back as exit code 2 and one line, drift as 1; -d is no option in process; help needs nothing', async () => {
  const outcomes: Array<{ code: number; stdout: string; stderr: string }> = [];
  for (const argv of [['history', 'Subscription', '1', '--yaml'], ['-d', 'data-source.js', 'stats'], ['state', 'Nope', '1'], ['verify', 'Subscription', '--no-progress'], ['--help']]) {
    const stdout = capture();
    const stderr = capture();
    if (argv[0] === 'verify') await dataSource.query(`UPDATE subscription SET status = 'hacked' WHERE id = 3`);
    outcomes.push({ code: await admin(dataSource, argv, { stdout, stderr }), stdout: stdout.text, stderr: stderr.text });
  }
  expect(outcomes.slice(0, 3)).toEqual([
    { code: 2, stdout: '', stderr: "error: unknown option '--yaml'\n" },
    { code: 2, stdout: '', stderr: "error: unknown option '-d'\n" },
    { code: 2, stdout: '', stderr: "error: unknown aggregate 'Nope': known aggregates: Reward, Subscription, User\n" },
  ]);
  expect(outcomes[3]).toEqual({ code: 1, stdout: expect.stringMatching(/^Subscription: 1 mismatch in 1 of 3 rows\n/), stderr: '' });
  expect(outcomes[4].code).toBe(0);
  expect(outcomes[4].stdout).toMatch(/^Usage: typeorm-es \[options\] \[command\]/);
  expect(outcomes[4].stdout).not.toContain('--data-source');
});

test('on a terminal, long commands draw a cli-progress bar with count, rate and ETA', async () => {
  const stdout = capture();
  const stderr = capture(true);
  expect(await admin(dataSource, ['verify', 'Subscription', '--fix'], { stdout, stderr })).toBe(0);
  // cli-progress redraws the line in place: what shows last is the finished bar.
  expect(stderr.text).toMatch(/verify Subscription \[#{40}\] 3\/3 100% \| \d+\/s \| ETA 0s/);
  expect(stdout.text).toContain('rebuilt 1 row from their events');
});

test('worker in process stops when the AbortSignal aborts, restores the signal handlers and leaves the instance open', async () => {
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: process.env.REDIS_URL } });
  try {
    const handlers = [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];
    const stop = new AbortController();
    const stdout = capture();
    const stderr = capture();
    const running = runCli(es, ['worker'], { stdout, stderr, signal: stop.signal });
    await activeSubscription({ dataSource, es }, { email: 'dee@example.com', rewardTitle: 'Reward 4', stripeKey: 'sub_4', requestId: 'req-4' });
    await waitFor('the mails of subscription 4', async () => (await dataSource.manager.countBy(SentMail, { recipient: 'dee@example.com' })) === 1);
    const [, activated] = await es.history(Subscription, 4);
    // The worker also runs the jobs beforeAll's activations left in the queue.
    const lines = () => stdout.text.split('\n').filter((line) => line.includes(`subscription_events/${activated.id} `));
    await waitFor('the job lines of subscription 4', async () => lines().length === 2);
    expect(lines().sort()).toEqual([
      `completed NewSubscriberNotification for subscription_events/${activated.id} (Subscription.Activated)`,
      `completed SubscriptionConfirmation for subscription_events/${activated.id} (Subscription.Activated)`,
    ]);
    stop.abort();
    expect(await running).toBe(0);
    expect(stderr.text).toMatch(/\nabort: letting running jobs finish, then closing\nworker closed\n$/);
    expect([process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')]).toEqual(handlers);
    expect(await es.pendingReactorJobs()).toBe(0);
  } finally {
    await es.queue.obliterate({ force: true }).catch(() => undefined);
    await es.close();
  }
});
