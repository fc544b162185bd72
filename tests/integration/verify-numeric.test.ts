import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType, HasEvents } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';

/** pg returns numeric columns as strings; `apply` sets numbers. Replay compares them as stored. */
@Aggregate()
@Entity()
class PricedItem {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'numeric', precision: 10, scale: 2, default: 0 }) price!: number | string;
  @AggregateVersion() version!: number;
  @HasEvents(() => PricedItemEvent) events!: PricedItemEvent[];
}

@EventsOf(() => PricedItem)
abstract class PricedItemEvent extends AggregateEvent<PricedItem, 'pricedItem'> {}

@EventType('PricedItem.Priced', { creates: true })
class PricedItemPriced extends PricedItemEvent {
  @Data() price!: number;
  apply(item: PricedItem): PricedItem {
    item.price = this.price;
    return item;
  }
}

let dataSource: DataSource;
let es: EventSourcing;
beforeAll(async () => {
  dataSource = await testDataSource('verify_numeric', [PricedItem, PricedItemEvent, PricedItemPriced]);
  es = await EventSourcing.attach(dataSource);
});
afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

test("a numeric column stored as '10.50' matches the 10.5 its events produce; a real difference is reported", async () => {
  const created = await dataSource.manager.save(PricedItemPriced.build({ price: 10.5 }));
  const row = await dataSource.manager.findOneByOrFail(PricedItem, { id: created.aggregateId });
  expect(row.price).toBe('10.50');
  expect(await es.verify(PricedItem)).toEqual([]);

  await dataSource.query('UPDATE priced_item SET price = 11 WHERE id = $1', [row.id]);
  expect(await es.verify(PricedItem)).toEqual([{ reason: 'drift', id: row.id, column: 'price', stored: '11.00', replayed: 10.5 }]);
  await es.rebuild(PricedItem, row.id);
  expect(await es.verify(PricedItem)).toEqual([]);
});
