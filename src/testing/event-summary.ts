import { isDeepStrictEqual } from 'node:util';
import { AggregateEvent } from '../events/aggregate-event';

/** What a test expects of one event: its class, or an event built with the data it must carry. */
export type ExpectedEvent = (abstract new () => AggregateEvent) | AggregateEvent;

/** The type and, for a built expectation, the data keys it names: the shape compared and shown in diffs. */
export interface EventSummary {
  /** The stored event type. */
  type: string;
  /** The data keys the expectation names, with their values. */
  data?: Record<string, unknown>;
}

function plainData(event: AggregateEvent): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event.data));
}

export function expectedSummary(expected: ExpectedEvent): EventSummary {
  if (expected instanceof AggregateEvent) return { type: expected.type, data: plainData(expected) };
  const probe = Object.create(expected.prototype) as AggregateEvent;
  return { type: probe.type };
}

/** The actual event, summarised with the same keys as the expectation it is compared with. */
export function actualSummary(event: AggregateEvent, like?: EventSummary): EventSummary {
  if (!like?.data) return { type: event.type };
  const data = plainData(event);
  return { type: event.type, data: Object.fromEntries(Object.keys(like.data).map((key) => [key, data[key]])) };
}

export function matches(event: AggregateEvent, expected: ExpectedEvent): boolean {
  const summary = expectedSummary(expected);
  return isDeepStrictEqual(actualSummary(event, summary), summary);
}
