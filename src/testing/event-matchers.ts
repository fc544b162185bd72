import { inspect, isDeepStrictEqual } from 'node:util';
// Brings the `expect` package's types into this build so the augmentation below has a module to
// augment; TypeScript drops the import from the emitted declarations.
import type {} from 'expect';
import type { AggregateEvent, DataKeys } from '../events/aggregate-event';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { actualSummary, expectedSummary, matches, type ExpectedEvent } from './event-summary';

/** The data `toHaveEmitted` compares: some of the event class's `@Data` attributes. */
export type EmittedData<E> = Partial<Pick<E, DataKeys<E>>>;

/** What a jest matcher returns. */
export interface MatcherResult {
  /** Whether the expectation holds. */
  pass: boolean;
  /** The failure message. */
  message: () => string;
}

function eventsIn(received: unknown): AggregateEvent[] {
  if (received === null || received === undefined) return [];
  return Array.isArray(received) ? received : [received as AggregateEvent];
}

/**
 * Jest matchers for what commands return. Register once: `expect.extend(eventMatchers)`.
 *
 * @example
 * ```ts
 * expect.extend(eventMatchers);
 * const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
 * expect(result).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_66123' });
 * ```
 */
export const eventMatchers = {
  /** Passes when the event (or one of the events) is of this class and carries this data. */
  toHaveEmitted(received: unknown, eventClass: abstract new () => AggregateEvent, data?: Record<string, unknown>): MatcherResult {
    if (data) {
      // A key that is not a @Data attribute would never be compared: the expectation could not fail.
      const names = getMetadataStorage().dataOf(eventClass).map((record) => record.propertyName);
      const unknown = Object.keys(data).filter((key) => !names.includes(key));
      if (unknown.length > 0) {
        throw new TypeError(
          `toHaveEmitted: ${eventClass.name} has no @Data attribute ${unknown.map((key) => `'${key}'`).join(', ')} (its attributes: ${names.join(', ') || 'none'})`,
        );
      }
    }
    const expected: ExpectedEvent = data ? Object.assign(Object.create(eventClass.prototype), data) : eventClass;
    const wanted = expectedSummary(expected);
    const events = eventsIn(received);
    // The aggregate's abstract events class has no type of its own: any of its events is "of this class".
    const ownType = getMetadataStorage().eventTypeOf(eventClass) !== undefined;
    const pass = events.some(
      (event) =>
        event instanceof eventClass &&
        (ownType ? matches(event, expected) : isDeepStrictEqual(actualSummary(event, wanted).data, wanted.data)),
    );
    return {
      pass,
      message: () =>
        `expected ${pass ? 'no ' : ''}event like ${inspect(wanted, { depth: 5 })}\n` +
        `emitted: ${inspect(events.map((event) => actualSummary(event, wanted)), { depth: 5 })}`,
    };
  },
};

// Both ways of getting `expect` in jest: the global one (@types/jest) and the one imported from
// @jest/globals (the `expect` package's own types).
declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /** The event (or one of the events) is of this class and carries this data. */
      toHaveEmitted<E extends AggregateEvent<any, any>>(eventClass: abstract new () => E, data?: EmittedData<E>): R;
    }
  }
}

declare module 'expect' {
  interface Matchers<R> {
    /** The event (or one of the events) is of this class and carries this data. */
    toHaveEmitted<E extends AggregateEvent<any, any>>(eventClass: abstract new () => E, data?: EmittedData<E>): R;
  }
}
