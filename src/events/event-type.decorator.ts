import { ChildEntity } from 'typeorm';
import { getMetadataStorage } from '../metadata/metadata-storage';

/**
 * Gives an event class its stored type name, independent of the class name so classes can be
 * renamed freely. Names must be unique: two classes claiming one name fail at start-up.
 *
 * @example
 * ```ts
 * @EventType('Subscription.Activated')
 * export class SubscriptionActivated extends SubscriptionEvent { ... }
 * ```
 */
export function EventType(name: string): ClassDecorator {
  return (target) => {
    ChildEntity(name)(target);
    getMetadataStorage().eventTypes.push({ target, name });
  };
}
