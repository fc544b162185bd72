import { ChildEntity } from 'typeorm';
import { getMetadataStorage } from '../metadata/metadata-storage';

/** Options of {@link EventType}. */
export interface EventTypeOptions {
  /**
   * Whether an event of this type, built without an existing aggregate, creates one. Every other
   * event type needs its aggregate and raises `AggregateRequiredError` without one.
   * @defaultValue false
   */
  creates?: boolean;
}

/**
 * Gives an event class its stored type name, independent of the class name so classes can be
 * renamed freely. Names must be unique: two classes claiming one name fail at start-up.
 *
 * @example
 * ```ts
 * @EventType('Subscription.Created', { creates: true })
 * export class SubscriptionCreated extends SubscriptionEvent { ... }
 *
 * @EventType('Subscription.Activated')
 * export class SubscriptionActivated extends SubscriptionEvent { ... }
 * ```
 */
export function EventType(name: string, options: EventTypeOptions = {}): ClassDecorator {
  return (target) => {
    ChildEntity(name)(target);
    getMetadataStorage().eventTypes.push({ target, name, creates: options.creates ?? false });
  };
}
