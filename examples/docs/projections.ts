// #region imports
import { Column, Entity, PrimaryColumn, type DataSource, type EntityManager } from 'typeorm';
import { Projection, type EventSourcing } from 'typeorm-event-sourcing';
import { Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

// #region read-model
/** The report's table: an ordinary TypeORM entity the projection keeps up to date. */
@Entity({ name: 'monthly_subscribers' })
export class MonthlySubscribers {
  /** '2025-03' */
  @PrimaryColumn({ type: 'varchar' }) month!: string;
  @Column({ type: 'int', default: 0 }) activated!: number;
  @Column({ type: 'int', default: 0 }) cancelled!: number;
}
// #endregion read-model

// #region projection
const monthOf = (date: Date) => date.toISOString().slice(0, 7);

async function count(manager: EntityManager, month: string, column: 'activated' | 'cancelled'): Promise<void> {
  await manager.createQueryBuilder().insert().into(MonthlySubscribers).values({ month }).orIgnore().execute();
  await manager.increment(MonthlySubscribers, { month }, column, 1);
}

// Handlers write through `manager`: the batch's transaction, committed with the checkpoint.
// `tables`: the read model it owns, which `es.projections.rebuild` builds afresh.
export const monthlySubscribers = new Projection('monthly-subscribers', { tables: [MonthlySubscribers] })
  .on(SubscriptionActivated, (event, manager) => count(manager, monthOf(event.createdAt), 'activated'))
  .on([SubscriptionCancelled], (event, manager) => count(manager, monthOf(event.createdAt), 'cancelled'));
// #endregion projection

/** Events written before the projection existed: three activations, one cancellation. */
export async function writeEarlierEvents(dataSource: DataSource, es: EventSourcing): Promise<void> {
  for (const stripeKey of ['sub_1', 'sub_2', 'sub_3']) {
    const created = await es.append(SubscriptionCreated.build({ userId: 1 }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await es.append(SubscriptionActivated.build({ subscription, stripeKey }));
    if (stripeKey === 'sub_3') await es.append(SubscriptionCancelled.build({ subscription, reason: 'too expensive' }));
  }
}

/** docs/projections.md: a report built from events written before it existed, then kept live. */
export async function run(dataSource: DataSource, es: EventSourcing) {
  // #region catch-up
  const { processed } = await es.projections.catchUp(monthlySubscribers); // 4: every event of its types so far
  // #endregion catch-up
  const afterCatchUp = await dataSource.manager.find(MonthlySubscribers);

  // #region run
  const stop = new AbortController();
  const running = es.projections.run(monthlySubscribers, { signal: stop.signal });
  // ... the application writes events; the runner handles them within moments ...
  // #endregion run
  const created = await es.append(SubscriptionCreated.build({ userId: 2 }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_4' }));
  for (let tries = 0; tries < 200 && (await es.projections.status())[0].lag?.events !== 0; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // #region status
  const [status] = await es.projections.status();
  // { name: 'monthly-subscribers', checkpoint: { txId, position }, lag: { events: 0, seconds: 0 }, lastError: null, updatedAt }
  // #endregion status

  // #region stop
  stop.abort(); // on shutdown; es.close() stops every runner too
  await running;
  // #endregion stop

  // #region rebuild
  // After a deploy that changed what the handlers write: the report built again from the first
  // event, in a fresh table swapped in at the end. Readers see the old report until then.
  const rebuilt = await es.projections.rebuild(monthlySubscribers); // { processed: 5, mode: 'swap' }
  // #endregion rebuild

  return {
    processed,
    rebuilt,
    afterRebuild: (await dataSource.manager.find(MonthlySubscribers)).map(({ month, activated, cancelled }) => ({ month, activated, cancelled })),
    afterCatchUp: afterCatchUp.map(({ month, activated, cancelled }) => ({ month, activated, cancelled })),
    afterRun: (await dataSource.manager.find(MonthlySubscribers)).map(({ month, activated, cancelled }) => ({ month, activated, cancelled })),
    status: { name: status.name, lag: status.lag, lastError: status.lastError, position: status.checkpoint?.position },
  };
}
