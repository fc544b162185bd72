import { EventSourcingError } from './event-sourcing-error';

/**
 * One event instance was saved a second time while its first write was in flight (or, by a
 * concurrent save, just after it committed). An event is written once: build a new one for a new
 * fact. Later, `es.append` of a written event raises `ImmutableEventError`; `manager.save` of it
 * finds nothing changed and writes nothing.
 */
export class EventAlreadyWrittenError extends EventSourcingError {
  constructor(
    /** The event type, e.g. `'Subscription.Activated'`. */
    readonly eventType: string,
    /** `'in flight'` or `'written'`. */
    readonly state: 'in flight' | 'written',
  ) {
    super(
      'EVENT_ALREADY_WRITTEN',
      `${eventType}: this event instance is already ${state === 'written' ? 'written' : 'being written'}; an event is written once, build a new one`,
    );
  }
}
