import 'reflect-metadata';
import { Attribute, Command, Data, EventType } from '../../src';
import { Order, OrderEvent, orderEntities } from './model';

/**
 * The outage tests' additions to the reliability model: events that change an existing order
 * (the shared model only creates orders), and commands writing them. Same tables as model.ts.
 */

@EventType('Order.Bumped')
export class OrderBumped extends OrderEvent {
  @Data() by!: number;
  apply(order: Order): Order {
    order.number = (order.number ?? 0) + this.by;
    order.status = 'bumped';
    return order;
  }
}

@EventType('Order.Renumbered')
export class OrderRenumbered extends OrderEvent {
  @Data() number!: number;
  apply(order: Order): Order {
    order.number = this.number;
    order.status = 'renumbered';
    return order;
  }
}

export const outageEntities = [...orderEntities, OrderBumped, OrderRenumbered];

export class BumpOrder extends Command<OrderBumped> {
  @Attribute() order!: Order;
  @Attribute() by!: number;
  buildEvent(): OrderBumped {
    return OrderBumped.build({ order: this.order, by: this.by });
  }
}

/** A no-op when the order already has the number: an instance left ahead of the database would skip the write. */
export class RenumberOrder extends Command<OrderRenumbered> {
  @Attribute() order!: Order;
  @Attribute() number!: number;
  noop(): boolean {
    return this.order.number === this.number;
  }
  buildEvent(): OrderRenumbered {
    return OrderRenumbered.build({ order: this.order, number: this.number });
  }
}

