// Release 2 of the app of evolution-release1.ts, as a user upgrades it: the activation is renamed
// 'Subscription.Activated' (old name kept as an alias) and gained a plan (version 2, upcast from
// 1), pausing is retired, and a projection and a report are built from the events release 1
// wrote. The pack test runs it on release 1's database and compares what it prints.
import 'reflect-metadata';
import { Column, DataSource, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import {
  Aggregate,
  AggregateEvent,
  AggregateVersion,
  Data,
  EventSchemaVersionError,
  EventSourcing,
  EventsOf,
  EventType,
  Projection,
  ProjectionError,
  RetiredEventTypeError,
} from 'typeorm-event-sourcing';
import { upcast } from 'typeorm-event-sourcing/testing';

@Aggregate()
@Entity()
class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'varchar', nullable: true }) plan!: string | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Subscription)
abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

@EventType('Subscription.Created', { creates: true })
class SubscriptionCreated extends SubscriptionEvent {
  @Data() userId!: number;
  apply(subscription: Subscription) {
    subscription.userId = this.userId;
    return subscription;
  }
}

@EventType('Subscription.Activated', { version: 2, upcast: { 1: (data) => ({ ...data, plan: 'basic' }) }, aliases: ['Subscription.Started'] })
class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  @Data() plan!: string;
  apply(subscription: Subscription) {
    subscription.status = 'active';
    subscription.stripeKey = this.stripeKey;
    subscription.plan = this.plan;
    return subscription;
  }
}

@EventType('Subscription.Paused', { retired: true })
class SubscriptionPaused extends SubscriptionEvent {
  @Data() reason!: string;
  apply(subscription: Subscription) {
    subscription.status = 'paused';
    return subscription;
  }
}

/** The read model: active subscriptions per plan. */
@Entity()
class PlanCount {
  @PrimaryColumn({ type: 'varchar' }) plan!: string;
  @Column({ type: 'int' }) count!: number;
}

const byPlan = new Projection('subscriptions-by-plan', { tables: [PlanCount] })
  .on(SubscriptionActivated, async (event, manager) => {
    await manager.query(`INSERT INTO plan_count (plan, count) VALUES ($1, 1) ON CONFLICT (plan) DO UPDATE SET count = plan_count.count + 1`, [event.plan]);
  })
  .on(SubscriptionPaused, async (_event, manager) => {
    await manager.query(`UPDATE plan_count SET count = count - 1 WHERE plan = 'basic'`);
  });

async function errorOf(work: () => unknown): Promise<string> {
  try {
    await work();
    return 'no error';
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

async function main() {
  const dataSource = new DataSource({
    type: 'postgres',
    url: process.env.DATABASE_URL,
    entities: [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionActivated, SubscriptionPaused, PlanCount],
    synchronize: true,
  });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  await es.schema.create();
  try {
    // The new plan column is decided by events: replay release 1's events into it.
    await es.rebuildAll(Subscription);
    const history = await es.history(Subscription, 1);
    const first = await dataSource.manager.findOneByOrFail(Subscription, { id: 1 });
    const added = await es.append(SubscriptionActivated.build({ subscription: first, stripeKey: 'sub_pro', plan: 'pro' }));
    // An older transaction still open anywhere on the server holds the horizon back: catch up
    // until nothing is left (bounded).
    const caughtUp = { processed: 0 };
    for (let tries = 0; tries < 300; tries += 1) {
      caughtUp.processed += (await es.projections.catchUp(byPlan)).processed;
      if ((await es.projections.status())[0].lag?.events === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const plans = await dataSource.query('SELECT plan, count FROM plan_count ORDER BY plan');
    // The report changes its mind (pauses no longer count against the plan): rebuild it from
    // the first event into a fresh table, swapped in at the end.
    const recount = new Projection('subscriptions-by-plan', { tables: [PlanCount] }).on(SubscriptionActivated, async (event, manager) => {
      await manager.query(`INSERT INTO plan_count (plan, count) VALUES ($1, 1) ON CONFLICT (plan) DO UPDATE SET count = plan_count.count + 1`, [event.plan]);
    });
    const rebuilt = await es.projections.rebuild(recount);
    const recounted = await dataSource.query('SELECT plan, count FROM plan_count ORDER BY plan');
    const schemaDiff = (await dataSource.driver.createSchemaBuilder().log()).upQueries.length;
    const keys = await es.fold({ events: SubscriptionActivated }, (list: string[], event) => [...list, `${event.plan}:${event.stripeKey}`], []);
    // A row of a release 3 this code does not know yet.
    await dataSource.query(
      `INSERT INTO subscription_events (subscription_id, version, type, schema_version, data, metadata, created_at) VALUES (3, 2, 'Subscription.Activated', 3, '{"stripeKey": "x", "plan": "gold", "seats": 2}', '{}', now())`,
    );
    const future = await errorOf(() => es.history(Subscription, 3));
    const projectionError = await errorOf(() => es.projections.catchUp(recount));
    const health = await es.health();
    const [status] = await es.projections.status();
    console.log(
      JSON.stringify({
        history: history.map((event) => [event.constructor.name, event.type, event.schemaVersion, event instanceof SubscriptionActivated ? event.plan : null]),
        verify: await es.verify(Subscription, { id: 2 }),
        row: { status: first.status, plan: first.plan, version: first.version },
        stored: await dataSource.query('SELECT type, schema_version FROM subscription_events WHERE id = $1', [added.id]),
        retired: await errorOf(() => SubscriptionPaused.build({ subscription: first, reason: 'x' })),
        upcastHelper: upcast(SubscriptionActivated, { stripeKey: 'k' }, 1).plan,
        caughtUp,
        plans,
        rebuilt,
        recounted,
        schemaDiff,
        keys,
        future,
        futureIsNamed: future.startsWith(EventSchemaVersionError.name),
        projectionError: projectionError.startsWith(ProjectionError.name) || projectionError.startsWith(EventSchemaVersionError.name),
        lastError: status.lastError?.message ?? null,
        health: { status: health.status, database: health.database.status, projections: health.projections?.map((p) => [p.name, p.status]) },
        retiredName: RetiredEventTypeError.name,
      }),
    );
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
