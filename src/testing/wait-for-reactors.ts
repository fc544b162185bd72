import type { EventSourcing } from '../event-sourcing';
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
}

/**
 * Resolves once every async reactor job for the events written so far has finished (completed,
 * or failed for good), so a test can assert what the reactors did. A worker must be running
 * (`es.worker()`).
 *
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
    if (pending === 0) return;
    if (Date.now() > deadline) {
      throw new EventSourcingError('TIMEOUT', `waitForReactors: ${pending} async reactor jobs still pending after ${timeout} ms (is a worker running?)`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
