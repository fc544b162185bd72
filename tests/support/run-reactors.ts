import type { EventSourcing } from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';

/** What {@link runReactors} waits for. */
export interface RunReactorsOptions {
  /** Start the worker's outbox relay too. */
  relay?: boolean;
  /** Jobs that fail for good are expected (they are the test's subject). */
  allowFailures?: boolean;
  timeout?: number;
}

/** Runs a worker until every pending reactor job has finished, then closes it. */
export async function runReactors(es: EventSourcing, { relay = false, allowFailures = false, timeout = 20_000 }: RunReactorsOptions = {}): Promise<void> {
  const worker = es.worker({ relay });
  try {
    await waitForReactors(es, { timeout, allowFailures });
  } finally {
    await worker.close();
  }
}
