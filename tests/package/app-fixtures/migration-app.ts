// A CRUD table moved onto events with the installed package, as docs/migrating-crud-models.md
// shows; the pack test compiles and runs it against real PostgreSQL and prints what it saw.
import 'reflect-metadata';
import { Column, CreateDateColumn, DataSource, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import {
  Aggregate, AggregateEvent, AggregateVersion, Data, DirectWriteError, EventSourcing, EventsOf, EventType, MissingBaselineError,
  sourcedValues,
} from 'typeorm-event-sourcing';

@Aggregate({ baseline: (row: Plan) => PlanImported.build({ plan: row, ...sourcedValues(row) }), directWrites: 'reject' })
@Entity()
class Plan {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
  @Column({ type: 'numeric', precision: 10, scale: 2 }) price!: string;
  @Column({ type: 'timestamptz', nullable: true }) retiredAt!: Date | null;
  @CreateDateColumn({ type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) updatedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Plan)
abstract class PlanEvent extends AggregateEvent<Plan, 'plan'> {}

@EventType('Plan.Imported', { creates: true })
class PlanImported extends PlanEvent {
  @Data() name!: string;
  @Data() price!: string;
  @Data({ type: () => Date }) retiredAt!: Date | null;
  apply(plan: Plan) {
    plan.name = this.name;
    plan.price = this.price;
    plan.retiredAt = this.retiredAt;
    return plan;
  }
}

@EventType('Plan.Repriced')
class PlanRepriced extends PlanEvent {
  @Data() price!: string;
  apply(plan: Plan) {
    plan.price = this.price;
    return plan;
  }
}

/** A model without a baseline, to meet MissingBaselineError. */
@Aggregate()
@Entity()
class Coupon {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) code!: string;
  @AggregateVersion() version!: number;
}
@EventsOf(() => Coupon)
abstract class CouponEvent extends AggregateEvent<Coupon, 'coupon'> {}
@EventType('Coupon.Renamed')
class CouponRenamed extends CouponEvent {
  @Data() code!: string;
  apply(coupon: Coupon) {
    coupon.code = this.code;
    return coupon;
  }
}

async function errorOf(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return 'resolved';
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

async function main() {
  const dataSource = new DataSource({
    type: 'postgres', url: process.env.DATABASE_URL, synchronize: true,
    entities: [Plan, PlanEvent, PlanImported, PlanRepriced, Coupon, CouponEvent, CouponRenamed],
  });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  await dataSource.query(`INSERT INTO plan (name, price, "retiredAt") SELECT 'plan ' || n, n * 10.5, CASE WHEN n % 2 = 0 THEN now() END FROM generate_series(1, 25) n`);
  const waiting = (await es.verify(Plan)).map((mismatch) => mismatch.reason);
  // now() keeps microseconds, which a JavaScript Date cannot: the baseline refuses, saying how to round.
  const refused = await errorOf(() => es.baseline(Plan, { batchSize: 10 }));
  // Under directWrites: 'reject' the trigger refuses this UPDATE too, unless the transaction says
  // it is an operator's repair.
  await dataSource.transaction(async (manager) => {
    await manager.query(`SET LOCAL typeorm_es.allow_direct_write = on`);
    await manager.query(`UPDATE plan SET "retiredAt" = date_trunc('milliseconds', "retiredAt")`);
  });
  const before = await dataSource.query(`SELECT row_to_json(p)::jsonb - 'version' AS row FROM plan p ORDER BY id`);
  const result = await es.baseline(Plan, { batchSize: 10 });
  const after = await dataSource.query(`SELECT row_to_json(p)::jsonb - 'version' AS row FROM plan p ORDER BY id`);
  const plan = await dataSource.manager.findOneByOrFail(Plan, { id: 1 });
  const direct = await errorOf(async () => {
    plan.price = '1.00';
    await dataSource.manager.save(plan);
  });
  const raw = await errorOf(() => dataSource.query(`UPDATE plan SET price = 2 WHERE id = 1`));
  const fresh = await dataSource.manager.findOneByOrFail(Plan, { id: 1 });
  const repriced = await dataSource.manager.save(PlanRepriced.build({ plan: fresh, price: '12.00' }));
  await dataSource.query(`INSERT INTO coupon (code) VALUES ('OLD')`);
  const coupon = await dataSource.manager.findOneByOrFail(Coupon, { id: 1 });
  const missing = await errorOf(() => dataSource.manager.save(CouponRenamed.build({ coupon, code: 'NEW' })));
  console.log(JSON.stringify({
    waiting: [...new Set(waiting)], count: waiting.length, refused: refused.replace(/"[^"]*"/g, '"..."'), result,
    unchanged: JSON.stringify(before) === JSON.stringify(after),
    verified: await es.verify(Plan),
    direct: direct.startsWith(DirectWriteError.name), raw, repricedVersion: repriced.version,
    missing: missing.startsWith(MissingBaselineError.name), again: await es.baseline(Plan),
  }));
  await es.close();
  await dataSource.destroy();
}
main().catch((error) => { console.error(error); process.exit(1); });
