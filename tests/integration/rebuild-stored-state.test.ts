import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn, type DataSource } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventSourcing, EventsOf, EventType } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';

/**
 * The row `es.rebuild` returns is the row as now stored, so the fast path must start the next
 * event from the repaired values, not from the drifted ones the rebuild loaded.
 */
@Aggregate({ directWrites: 'allow' })
@Entity()
class Meter {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) reading!: number;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Meter)
abstract class MeterEvent extends AggregateEvent<Meter, 'meter'> {}

@EventType('Meter.Installed', { creates: true })
class MeterInstalled extends MeterEvent {
  @Data() reading!: number;
  apply(meter: Meter): Meter {
    meter.reading = this.reading;
    return meter;
  }
}

@EventType('Meter.Advanced')
class MeterAdvanced extends MeterEvent {
  @Data() by!: number;
  apply(meter: Meter): Meter {
    meter.reading += this.by;
    return meter;
  }
}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('rebuild_stored_state', [Meter, MeterEvent, MeterInstalled, MeterAdvanced]);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

test('an event appended to the row es.rebuild returns starts from the repaired state', async () => {
  const installed = await es.append(MeterInstalled.build({ reading: 10 }));
  const meter = await dataSource.manager.findOneByOrFail(Meter, { id: installed.aggregateId });
  await es.append(MeterAdvanced.build({ meter, by: 5 }));
  await dataSource.query('UPDATE meter SET reading = 999 WHERE id = $1', [meter.id]);

  const repaired = await es.rebuild(Meter, meter.id);
  expect(repaired).toMatchObject({ reading: 15, version: 2 });
  await es.append(MeterAdvanced.build({ meter: repaired, by: 1 }));

  const [row] = await dataSource.query('SELECT reading, version FROM meter WHERE id = $1', [meter.id]);
  expect(row).toEqual({ reading: 16, version: 3 });
  expect(repaired).toMatchObject({ reading: 16, version: 3 });
  expect(await es.verify(Meter, { id: meter.id })).toEqual([]);
});
