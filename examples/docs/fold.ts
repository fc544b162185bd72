// #region imports
import type { EventSourcing } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionActivated, SubscriptionCancelled } from '../subscriptions/model';
// #endregion imports

/** docs/projections.md: one-off reports with es.fold, over the events the projections example wrote. */
export async function run(es: EventSourcing, subscriptionId: number) {
  // #region fold-report
  // Activations and cancellations per month, from every event so far: no table, no checkpoint.
  const byMonth = await es.fold(
    { events: [SubscriptionActivated, SubscriptionCancelled] },
    (months, event) => {
      const month = event.createdAt.toISOString().slice(0, 7);
      const counts = months[month] ?? { activated: 0, cancelled: 0 };
      if (event instanceof SubscriptionActivated) counts.activated += 1;
      else counts.cancelled += 1;
      return { ...months, [month]: counts };
    },
    {} as Record<string, { activated: number; cancelled: number }>,
  );
  // #endregion fold-report

  // #region fold-aggregate
  // One subscription's stripe keys, in version order, written since the start of the year.
  const keys = await es.fold(
    { events: SubscriptionActivated, aggregate: { type: Subscription, id: subscriptionId }, from: new Date('2025-01-01') },
    (list: string[], event) => [...list, event.stripeKey],
    [],
  );
  // #endregion fold-aggregate
  return { byMonth, keys };
}
