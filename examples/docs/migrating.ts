// #region imports
import type { DataSource } from 'typeorm';
import type { EventSourcing } from 'typeorm-event-sourcing';
import { ActivateSubscription } from '../subscriptions/commands';
import { Subscription, SubscriptionActivated } from '../subscriptions/model';
// #endregion imports

/** docs/migrating-crud-models.md: a CRUD table moved onto events, on a DataSource with `es` attached. */
export async function run(dataSource: DataSource, es: EventSourcing) {
  // #region crud-rows
  // Rows the CRUD application wrote before Subscription had events: version 0, no events.
  await dataSource.query(`
    INSERT INTO subscription ("userId", status, "stripeKey", "activatedAt")
    VALUES (1, 'active', 'sub_1', '2024-03-01T10:00:00Z'), (2, 'pending', NULL, NULL)`);
  // #endregion crud-rows

  // #region verify-before
  const waiting = await es.verify(Subscription);
  // [{ reason: 'noEvents', id: 1, column: 'version', stored: 0, replayed: 0 }, { reason: 'noEvents', id: 2, ... }]
  // #endregion verify-before

  // #region baseline
  const result = await es.baseline(Subscription, { batchSize: 500 }); // { processed: 2, baselined: 2 }
  const drift = await es.verify(Subscription); // []: replaying each row's baseline gives back the row
  const again = await es.baseline(Subscription); // { processed: 0, baselined: 0 }: nothing left
  // #endregion baseline

  // #region lazy
  // A row the CRUD code still inserts after the run is adopted by its first event:
  await dataSource.query(`INSERT INTO subscription ("userId") VALUES (3)`);
  const late = await dataSource.manager.findOneByOrFail(Subscription, { userId: 3 });
  const activated = await ActivateSubscription.call({ subscription: late, stripeKey: 'sub_3' });
  // activated.version is 2: Subscription.Imported (version 1) was written first, in the same transaction
  // #endregion lazy

  const history = await es.history(Subscription, late.id);
  return {
    waiting,
    result,
    drift,
    again,
    activatedVersion: activated?.version,
    lateHistory: history.map((event) => `${event.version} ${event.type}`),
    isActivation: activated instanceof SubscriptionActivated,
  };
}
