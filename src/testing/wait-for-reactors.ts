import type { Job, Queue } from 'bullmq';
import type { EventSourcing } from '../event-sourcing';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { EventSourcingError } from '../errors/event-sourcing-error';

/** Options of {@link waitForReactors}. */
export interface WaitForReactorsOptions {
  /**
   * Give up after this many milliseconds.
   * @defaultValue 10000
   */
  timeout?: number;
  /**
   * Milliseconds between two checks.
   * @defaultValue 25
   */
  interval?: number;
  /**
   * Resolve even when jobs failed for good (attempts exhausted, or refused by the worker), for a
   * test whose point is the failure. They count as reported: later calls ignore them.
   * @defaultValue false
   */
  allowFailures?: boolean;
}

/** One job that failed for good, as listed by {@link ReactorJobsFailedError}. */
export interface FailedReactorJob {
  /** The BullMQ job id. */
  jobId: string;
  /** The reactor's name (the job's name). */
  reactor: string;
  /** The events table of the event the job reacted to, when the job data says so. */
  table: string | undefined;
  /** The event's row id in that table, when the job data says so. */
  eventId: number | undefined;
  /** Why the last attempt failed, as BullMQ recorded it. */
  failedReason: string;
  /** Attempts made. */
  attemptsMade: number;
}

/**
 * {@link waitForReactors} found async reactor jobs that failed for good (attempts exhausted, or
 * refused by the worker). `jobs` lists them; each is reported once, so the next call does not
 * fail because of them. Pass `{ allowFailures: true }` when the failure is what a test expects.
 */
export class ReactorJobsFailedError extends EventSourcingError {
  constructor(
    /** The jobs that failed, in the order BullMQ lists them. */
    readonly jobs: readonly FailedReactorJob[],
  ) {
    super(
      'REACTOR_JOBS_FAILED',
      `waitForReactors: ${jobs.length} async reactor job${jobs.length === 1 ? '' : 's'} failed for good ` +
        `(pass { allowFailures: true } if the test expects it):\n` +
        jobs.map((job) => `  ${job.jobId}: reactor ${job.reactor} on ${job.table ?? '?'}#${job.eventId ?? '?'} after ${job.attemptsMade} attempt(s): ${job.failedReason}`).join('\n'),
    );
  }
}

// Failed jobs already reported (or allowed), per queue, so that they do not fail the next test.
// Keyed by the queue's qualified name rather than by EventSourcing instance: a test that attaches
// a new instance to the same database reuses the same queue and must not inherit the failures of
// the previous one. The finishing time is part of the key, so a job retried by hand that fails
// again is reported again.
const reported = new Map<string, Set<string>>();

function failureKey(job: Job): string {
  return `${job.id}@${job.finishedOn ?? job.processedOn ?? ''}`;
}

function queueOf(es: EventSourcing): Queue | undefined {
  try {
    return es.queue;
  } catch (error) {
    // Without a queue there are no async jobs, so none can have failed.
    if (error instanceof EventSourcingConfigError) return undefined;
    throw error;
  }
}

async function unreportedFailures(queue: Queue): Promise<{ seen: Set<string>; failures: Job[] }> {
  let seen = reported.get(queue.qualifiedName);
  if (!seen) {
    seen = new Set();
    reported.set(queue.qualifiedName, seen);
  }
  const jobs = (await queue.getFailed(0, -1)).filter((job): job is Job => job !== undefined && job !== null);
  const known = seen;
  return { seen, failures: jobs.filter((job) => !known.has(failureKey(job))) };
}

function describe(job: Job): FailedReactorJob {
  const data = (job.data ?? {}) as { table?: unknown; id?: unknown; reactor?: unknown };
  return {
    jobId: String(job.id),
    reactor: typeof data.reactor === 'string' ? data.reactor : job.name,
    table: typeof data.table === 'string' ? data.table : undefined,
    eventId: typeof data.id === 'number' ? data.id : undefined,
    failedReason: job.failedReason ?? '(no reason recorded)',
    attemptsMade: job.attemptsMade,
  };
}

/**
 * Resolves once every async reactor job for the events written so far has completed, so a test
 * can assert what the reactors did. A worker must be running (`es.worker()`).
 *
 * A job that failed for good (attempts exhausted, or refused by the worker as forged) makes it
 * reject with {@link ReactorJobsFailedError}, once nothing is pending any more: a reactor that
 * always throws fails the test instead of going unnoticed. Every failed job in this
 * EventSourcing's queue counts, unless an earlier call reported or allowed it already, so a
 * failure does not leak into the next test. `{ allowFailures: true }` resolves anyway, for tests
 * of the failure itself; the failed jobs stay in BullMQ's failed set for the test to inspect.
 *
 * @throws ReactorJobsFailedError when jobs failed for good and `allowFailures` is not set.
 * @throws EventSourcingError with code `'TIMEOUT'` when work is still pending after `timeout`.
 *
 * @example
 * ```ts
 * await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
 * await waitForReactors(es);
 * expect(await sentMails()).toHaveLength(2);
 * ```
 */
export async function waitForReactors(es: EventSourcing, options: WaitForReactorsOptions = {}): Promise<void> {
  const timeout = options.timeout ?? 10_000;
  const interval = options.interval ?? 25;
  const deadline = Date.now() + timeout;
  for (;;) {
    const pending = await es.pendingReactorJobs();
    if (pending === 0) break;
    if (Date.now() > deadline) {
      throw new EventSourcingError('TIMEOUT', `waitForReactors: ${pending} async reactor jobs still pending after ${timeout} ms (is a worker running?)`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  const queue = queueOf(es);
  if (!queue) return;
  const { seen, failures } = await unreportedFailures(queue);
  for (const job of failures) seen.add(failureKey(job));
  if (failures.length > 0 && !options.allowFailures) throw new ReactorJobsFailedError(failures.map(describe));
}
