import type { AggregateEvent, EventMetadata } from '../events/aggregate-event';

/** A reference to an event that is unique across every events table: `<table>/<id>`. */
function eventReference(table: string, event: AggregateEvent): string {
  return `${table}/${event.id}`;
}

/**
 * The metadata events written by a reactor of `event` receive: the event that caused them, and
 * the first event of the chain (the correlation), carried along from event to event.
 */
export function causationMetadata(table: string, event: AggregateEvent): EventMetadata {
  const reference = eventReference(table, event);
  const correlationId = typeof event.metadata?.correlationId === 'string' ? event.metadata.correlationId : reference;
  return { causationId: reference, correlationId };
}
