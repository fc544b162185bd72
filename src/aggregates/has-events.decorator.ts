import { OneToMany } from 'typeorm';
import type { AggregateEvent } from '../events/aggregate-event';

/**
 * The aggregate's events ("has many events"), loadable like any TypeORM relation
 * (`relations: { events: true }`) and sorted by version when loaded.
 *
 * The relation is read-only: saving the aggregate never inserts, updates or detaches events,
 * whatever the array holds. Events are written by saving events.
 *
 * @example
 * ```ts
 * @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
 * ```
 */
export function HasEvents(events: () => abstract new () => AggregateEvent<any>): PropertyDecorator {
  return (object, propertyName) => {
    OneToMany(events, 'aggregate', { persistence: false, orphanedRowAction: 'disable' })(object, propertyName);
  };
}
