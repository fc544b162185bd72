import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { dispatcher } from '../../examples/subscriptions/dispatcher';
import { SentMail } from '../../examples/subscriptions/sent-mail';
import { buildCli, exampleDataSource, spawnBin } from '../support/cli';
import { activeSubscription, openCliProject, type CliProject } from '../support/cli-project';
import { waitFor } from '../support/processes';

/**
 * `worker` and `relay` run until SIGTERM or SIGINT: they do their work meanwhile (a reactor job
 * runs, an outbox row left behind reaches the queue) and then close within seconds, exit code 0.
 */

let project: CliProject;
const running = new Set<ChildProcessWithoutNullStreams>();

beforeAll(async () => {
  await buildCli();
  // The example's own dispatcher: the child's worker must know every reactor a job names.
  project = await openCliProject('cli_worker', dispatcher);
}, 60_000);

afterAll(async () => {
  for (const child of running) child.kill('SIGKILL');
  await project?.close();
});

/** A running command: its output so far, and its end. */
function start(...args: string[]) {
  const child = spawnBin(['-d', exampleDataSource(), ...args], project.env);
  running.add(child);
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  /** Sends the signal; resolves with the exit and how long it took. */
  const stop = async (signal: NodeJS.Signals) => {
    const sent = Date.now();
    child.kill(signal);
    const exit = await Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit 10 s after ${signal}:\n${output.stderr}`)), 10_000))]);
    return { ...exit, ms: Date.now() - sent };
  };
  return { child, output, stop };
}

test('worker runs the async reactors of an event written elsewhere, then stops on SIGTERM with exit code 0', async () => {
  const worker = start('worker', '--concurrency', '2');
  await waitFor('the worker to start', async () => worker.output.stderr.includes('SIGTERM or SIGINT stops it'), 15_000);
  expect(worker.output.stderr).toMatch(/^worker on queue typeorm-event-sourcing-[0-9a-f]{8}, concurrency 2, with an outbox relay: SIGTERM or SIGINT stops it\n/);
  await activeSubscription(project, { email: 'ada@example.com', rewardTitle: 'Poster', stripeKey: 'sub_1', requestId: 'req-1' });
  const mails = await waitFor('both mails', async () => {
    const sent = await project.dataSource.manager.find(SentMail, { order: { reactor: 'ASC' } });
    return sent.length === 2 && sent;
  });
  expect(mails.map((mail) => `${mail.reactor} ${mail.recipient}`)).toEqual(['NewSubscriberNotification creator@example.com', 'SubscriptionConfirmation ada@example.com']);
  await waitFor('both job lines', async () => worker.output.stdout.split('\n').filter(Boolean).length === 2);
  expect(worker.output.stdout.split('\n').filter(Boolean).sort()).toEqual([
    'completed NewSubscriberNotification for subscription_events/2 (Subscription.Activated)',
    'completed SubscriptionConfirmation for subscription_events/2 (Subscription.Activated)',
  ]);

  const exit = await worker.stop('SIGTERM');
  expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
  expect(exit.ms).toBeLessThan(5000);
  expect(worker.output.stderr.split('\n').slice(1)).toEqual(['SIGTERM: letting running jobs finish, then closing', 'worker closed', '']);
  expect(await project.es.queue.getJobCounts('completed', 'waiting', 'active', 'failed')).toEqual({ completed: 2, waiting: 0, active: 0, failed: 0 });
});

test('relay hands an outbox row left behind to the queue, then stops on SIGINT with exit code 0', async () => {
  // What a crash between COMMIT and the hand-over leaves: the row, older than the relay's grace.
  const [event] = await project.dataSource.query(`SELECT id, position FROM subscription_events WHERE type = 'Subscription.Activated'`);
  const [{ job_key: jobKey }] = await project.dataSource.query(
    `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor, created_at)
     VALUES ('subscription_events', $1, $2, 'Subscription.Activated', 'SubscriptionConfirmation', clock_timestamp() - interval '1 minute')
     RETURNING job_key`,
    [event.id, event.position],
  );
  const [{ identity }] = await project.dataSource.query(`SELECT id::text AS identity FROM es_identity`);
  const jobId = `${identity}.${event.position}.SubscriptionConfirmation.${jobKey}`;
  const relay = start('relay');
  await waitFor('the job in the queue', async () => (await project.es.queue.getJobState(jobId)) === 'waiting', 15_000);
  // The relay adds the job before its transaction deletes the row and commits.
  await waitFor('the outbox row handed over', async () => (await project.dataSource.query(`SELECT count(*)::int AS count FROM es_outbox`))[0].count === 0, 15_000);

  const exit = await relay.stop('SIGINT');
  expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
  expect(exit.ms).toBeLessThan(5000);
  expect(relay.output.stderr).toMatch(/^outbox relay for queue typeorm-event-sourcing-[0-9a-f]{8}: SIGTERM or SIGINT stops it\nSIGINT: closing\nrelay closed\n$/);
  expect(relay.output.stdout).toBe('');
});
