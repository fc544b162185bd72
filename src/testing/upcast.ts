import type { AggregateEvent } from '../events/aggregate-event';
import { UsageError } from '../errors/usage-error';

/**
 * The event a stored row of an older schema version reads as: `storedData` (the row's `data`
 * jsonb) upcast from `fromVersion` through the class's `@EventType` upcasters, then hydrated and
 * checked as every read does. Use it to test upcasters, and `apply` on old shapes, without a
 * database. The result is an unsaved instance whose `schemaVersion` is `fromVersion`, as a loaded
 * row's is.
 *
 * @throws EventSchemaVersionError when `fromVersion` is newer than the class knows.
 * @throws EventUpcastError when an upcaster throws or returns no object.
 * @throws InvalidEventDataError when the upcast data does not fit the `@Data` attributes.
 *
 * @example
 * ```ts
 * const event = upcast(SubscriptionActivated, { stripeKey: 'sub_1' }, 1);
 * expect(event.plan).toBe('basic');
 * ```
 */
export function upcast<E extends AggregateEvent>(eventClass: new () => E, storedData: Record<string, unknown>, fromVersion: number): E {
  if (typeof eventClass !== 'function') throw new UsageError('upcast', 'eventClass', 'must be an event class');
  const event = new eventClass();
  event.schemaVersion = fromVersion;
  // A row is parsed afresh on every read: an upcaster that changes its argument must not change the caller's object.
  (event as { data: unknown }).data = structuredClone(storedData);
  return event;
}
