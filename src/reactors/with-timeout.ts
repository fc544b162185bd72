import { EventSourcingError } from '../errors/event-sourcing-error';

/**
 * Rejects when `promise` has not settled after `ms` milliseconds. The work goes on; the caller
 * just stops waiting (used for queue calls while Redis is unreachable).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EventSourcingError('TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
