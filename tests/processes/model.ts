import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from '../../src';

/**
 * The model of the reliability tests' child processes (and of their parent, which creates the
 * schema). Imported relatively from src/ so the compiled children run the current source.
 */
@Aggregate()
@Entity('reliability_orders')
export class Order {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'new' }) status!: string;
  @Column({ type: 'int', nullable: true }) number!: number | null;
  /** How many OrderNoted events were applied, and the writer of the last: replay must agree. */
  @Column({ type: 'int', default: 0 }) notes!: number;
  @Column({ type: 'varchar', nullable: true }) lastWriter!: string | null;
  @AggregateVersion() version!: number;
  @HasEvents(() => OrderEvent) events!: OrderEvent[];
}

@EventsOf(() => Order)
export abstract class OrderEvent extends AggregateEvent<Order, 'order'> {}

@EventType('Order.Placed', { creates: true })
export class OrderPlaced extends OrderEvent {
  @Data() number!: number;
  /** Asks the child's trigger reactor to SIGKILL the process inside the event's transaction. */
  @Data({ optional: true }) crash?: 'trigger';
  apply(order: Order): Order {
    order.number = this.number;
    order.status = 'placed';
    return order;
  }
}

/** Written by concurrent writers to one existing order; has no reactors. */
@EventType('Order.Noted')
export class OrderNoted extends OrderEvent {
  /** Which writer (process and writer number) wrote it. */
  @Data() writer!: string;
  @Data() seq!: number;
  apply(order: Order): Order {
    order.notes += 1;
    order.lastWriter = this.writer;
    return order;
  }
}

export const orderEntities = [Order, OrderEvent, OrderPlaced, OrderNoted];

/** The async reactors every child registers for OrderPlaced: two jobs per event. */
export const reactorNames = ['Ship', 'Invoice'] as const;

/**
 * What the reactors did, one row per run and phase ('started' before the reactor's sleep, 'done'
 * after it). Deliberately without a unique constraint: a second run must show up, not fail.
 */
export const RUNS_TABLE = 'reactor_runs';
export const createRunsTable = `CREATE TABLE IF NOT EXISTS ${RUNS_TABLE} (
  id bigserial PRIMARY KEY,
  event_id bigint NOT NULL,
  reactor text NOT NULL,
  phase text NOT NULL,
  pid int NOT NULL,
  attempt int NOT NULL,
  job_id text,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
)`;

/**
 * The reactors' external effect, made idempotent the usual way: a unique key per (event, reactor)
 * and ON CONFLICT DO NOTHING. A run repeated after a crash tries again and changes nothing, so
 * the row names the run that made the effect.
 */
export const EFFECTS_TABLE = 'reactor_effects';
export const createEffectsTable = `CREATE TABLE IF NOT EXISTS ${EFFECTS_TABLE} (
  event_id bigint NOT NULL,
  reactor text NOT NULL,
  pid int NOT NULL,
  job_id text,
  PRIMARY KEY (event_id, reactor)
)`;
