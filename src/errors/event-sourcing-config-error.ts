import { EventSourcingError } from './event-sourcing-error';

/**
 * The decorated classes do not fit together: an event type claimed twice, an events class whose
 * aggregate is not an entity of the DataSource, an aggregate without `@AggregateVersion`...
 * Raised at start-up by `EventSourcing.attach`, or when an unattached DataSource is used.
 */
export class EventSourcingConfigError extends EventSourcingError {
  constructor(message: string) {
    super('CONFIG', message);
  }
}
