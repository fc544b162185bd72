import { UsageError } from '../errors/usage-error';

/**
 * Checks an expected version as given by a caller: a non-negative safe integer, or undefined.
 * Anything else is a usage error, never a `ConcurrencyError` (which says the aggregate moved on).
 */
export function assertExpectedVersion(subject: string, value: unknown): asserts value is number | undefined {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    const shown = typeof value === 'string' ? `'${value}'` : String(value);
    throw new UsageError(subject, 'expectedVersion', `must be a non-negative integer, got ${shown} (${value === null ? 'null' : typeof value})`);
  }
}
