import { EventSourcingError } from './event-sourcing-error';

/**
 * An event was written without an existing aggregate, but its type does not create one. Only
 * event types declared `@EventType(name, { creates: true })` may create their aggregate.
 */
export class AggregateRequiredError extends EventSourcingError {
  constructor(
    /** The event type, e.g. `'Reward.SubscribersRecounted'`. */
    readonly eventType: string,
    /** The aggregate's class name. */
    readonly aggregateType: string,
    /** The key `build` takes the aggregate under, e.g. `'reward'`. */
    readonly aggregateKey: string,
  ) {
    super(
      'AGGREGATE_REQUIRED',
      `${eventType} needs an existing ${aggregateType}: build it with { ${aggregateKey} } (only event types declared @EventType(name, { creates: true }) create their aggregate)`,
    );
  }
}
