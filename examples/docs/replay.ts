// #region imports
import type { DataSource } from 'typeorm';
import type { EventSourcing } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

/** docs/replay.md: history, the time machine, rebuild and verify. */
export async function run(dataSource: DataSource, es: EventSourcing) {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123' }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'too expensive' }));
  const id = subscription.id;

  // #region history
  const history = await es.history(Subscription, id);
  history.map((event) => `${event.version} ${event.type}`); // ['1 Subscription.Created', '2 Subscription.Activated', '3 Subscription.Cancelled']
  // #endregion history

  // #region state-at
  const afterActivation = await es.stateAt(Subscription, id, { version: 2 }); // status 'active'
  const atThatMoment = await es.stateAt(Subscription, id, { at: activated.createdAt }); // status 'active' too
  // #endregion state-at

  // #region verify-rebuild
  await dataSource.query(`UPDATE subscription SET status = 'hacked' WHERE id = $1`, [id]);
  const mismatches = await es.verify(Subscription); // [{ reason: 'drift', id, column: 'status', stored: 'hacked', replayed: 'cancelled' }]
  await es.rebuild(Subscription, id); // the row is the replay of its events again
  const progress = await es.rebuildAll(Subscription, { batchSize: 500, onProgress: (p) => console.log(`${p.processed}/${p.total}`) });
  // #endregion verify-rebuild

  return {
    history: history.map((event) => `${event.version} ${event.type}`),
    afterActivation: afterActivation?.status,
    atThatMoment: atThatMoment?.status,
    mismatches,
    afterRebuild: await es.verify(Subscription),
    progress,
  };
}
