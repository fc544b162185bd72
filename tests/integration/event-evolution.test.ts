import { Queue } from 'bullmq';
import { Entity, PrimaryGeneratedColumn, type DataSource } from 'typeorm';
import {
  Aggregate,
  AggregateEvent,
  AggregateVersion,
  EventsOf,
  Dispatcher,
  EventSchemaVersionError,
  EventSourcing,
  EventSourcingConfigError,
  EventType,
  EventUpcastError,
  InvalidEventDataError,
  RetiredEventTypeError,
  type Reactor,
} from 'typeorm-event-sourcing';
import { upcast, waitForReactors } from 'typeorm-event-sourcing/testing';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import {
  Membership,
  MembershipActivated,
  MembershipEvent,
  MembershipOpened,
  MembershipPaused,
  MembershipResized,
  membershipEntities,
} from '../support/evolution-models';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
const queueName = `es-evolution-${process.pid}-${Date.now()}`;

/** What the async reactor saw of each event it ran for. */
const seen: { id: number; className: string; type: string; plan: string; seats: number; schemaVersion: number }[] = [];

class RecordActivation implements Reactor<MembershipActivated> {
  async call(event: MembershipActivated): Promise<void> {
    seen.push({ id: event.id, className: event.constructor.name, type: event.type, plan: event.plan, seats: event.seats, schemaVersion: event.schemaVersion });
  }
}

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('event_evolution', membershipEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(MembershipActivated, { async: RecordActivation }),
    queue: { connection: redisUrl, name: queueName, relay: { grace: 0, interval: 50 } },
  });
  es.worker();
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
  const url = new URL(redisUrl);
  const queue = new Queue(queueName, { connection: { host: url.hostname, port: Number(url.port) } });
  await queue.obliterate({ force: true });
  await queue.close();
});

async function open(userId: number): Promise<Membership> {
  const opened = await es.append(MembershipOpened.build({ userId }));
  return dataSource.manager.findOneByOrFail(Membership, { id: opened.aggregateId });
}

/** Writes an event row as an older release of the code did: raw SQL, its own type name and shape. */
async function writeOldRow(membership: Membership, type: string, schemaVersion: number, data: object): Promise<number> {
  const version = membership.version + 1;
  const [{ id }] = await dataSource.query(
    `INSERT INTO membership_events (membership_id, version, type, schema_version, data, metadata, created_at)
     VALUES ($1, $2, $3, $4, $5, '{}', now()) RETURNING id::int AS id`,
    [membership.id, version, type, schemaVersion, JSON.stringify(data)],
  );
  membership.version = version;
  return id;
}

/** Sets the row to what replaying its events gives, as the old code's write would have. */
async function storeReplayedRow(id: number): Promise<Membership> {
  await es.rebuild(Membership, id);
  return dataSource.manager.findOneByOrFail(Membership, { id });
}

describe('writing', () => {
  test("new events store their class's version in schema_version, on the fast and the locked path", async () => {
    const membership = await open(1);
    const fast = await es.append(MembershipActivated.build({ membership, stripeKey: 'sub_fast', plan: 'pro', seats: 5 }));
    const locked = await dataSource.transaction((manager) =>
      manager.save(MembershipActivated.build({ membership, stripeKey: 'sub_locked', plan: 'team', seats: 9 })),
    );
    const rows: { id: number; schema_version: number }[] = await dataSource.query(
      'SELECT id::int AS id, schema_version FROM membership_events WHERE membership_id = $1 ORDER BY version',
      [membership.id],
    );
    expect(rows).toEqual([
      { id: expect.any(Number), schema_version: 1 },
      { id: fast.id, schema_version: 3 },
      { id: locked.id, schema_version: 3 },
    ]);
    expect([fast.schemaVersion, locked.schemaVersion]).toEqual([3, 3]);
  });

  test('a retired type refuses to build new events, and nothing is written', async () => {
    const membership = await open(2);
    const error = await rejectionOf((async () => MembershipPaused.build({ membership, reason: 'holiday' }))());
    expect(error).toBeInstanceOf(RetiredEventTypeError);
    expect((error as Error).message).toBe('Membership.Paused (MembershipPaused) is retired: its old events still load, but no new ones are written');
    const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM membership_events WHERE membership_id = $1', [membership.id]);
    expect(count).toBe(1);
  });
});

describe('reading rows of older versions and names', () => {
  let membership: Membership;
  const ids: Record<string, number> = {};

  beforeAll(async () => {
    membership = await open(10);
    ids.v1 = await writeOldRow(membership, 'Membership.Activated', 1, { stripeKey: 'sub_v1' });
    ids.paused = await writeOldRow(membership, 'Membership.Paused', 1, { reason: 'holiday' });
    ids.alias = await writeOldRow(membership, 'Membership.Enabled', 1, { stripeKey: 'sub_alias' });
    ids.v2 = await writeOldRow(membership, 'Membership.Activated', 2, { stripeKey: 'sub_v2', plan: 'team' });
    membership = await storeReplayedRow(membership.id);
  });

  const expected = () => [
    { id: expect.any(Number), className: 'MembershipOpened', schemaVersion: 1 },
    { id: ids.v1, className: 'MembershipActivated', schemaVersion: 1, stripeKey: 'sub_v1', plan: 'basic', seats: 1 },
    { id: ids.paused, className: 'MembershipPaused', schemaVersion: 1 },
    { id: ids.alias, className: 'MembershipActivated', schemaVersion: 1, stripeKey: 'sub_alias', plan: 'basic', seats: 1 },
    { id: ids.v2, className: 'MembershipActivated', schemaVersion: 2, stripeKey: 'sub_v2', plan: 'team', seats: 1 },
  ];

  function summary(events: AggregateEvent[]) {
    return events.map((event) => {
      const row: Record<string, unknown> = { id: event.id, className: event.constructor.name, schemaVersion: event.schemaVersion };
      if (event instanceof MembershipActivated) Object.assign(row, { stripeKey: event.stripeKey, plan: event.plan, seats: event.seats });
      return row;
    });
  }

  test('history upcasts each row to the current shape and loads the alias as the renamed class', async () => {
    const history = await es.history(Membership, membership.id);
    expect(summary(history)).toEqual(expected());
    expect(history[3].type).toBe('Membership.Activated');
  });

  test("TypeORM's own find through the events base class reads them the same way", async () => {
    const events = await dataSource.manager.find(MembershipEvent, { where: { aggregateId: membership.id }, order: { version: 'ASC' } });
    expect(summary(events)).toEqual(expected());
  });

  test('a find of the event class itself selects only rows stored under its current name', async () => {
    const events = await dataSource.getRepository(MembershipActivated).find({ where: { aggregateId: membership.id }, order: { version: 'ASC' } });
    expect(events.map((event) => [event.id, event.plan])).toEqual([
      [ids.v1, 'basic'],
      [ids.v2, 'team'],
    ]);
  });

  test('replay applies the upcast events: the row, stateAt and verify agree', async () => {
    expect(membership).toMatchObject({ status: 'active', stripeKey: 'sub_v2', plan: 'team', seats: 1, version: 5 });
    const atPause = await es.stateAt(Membership, membership.id, { version: 3 });
    expect(atPause).toMatchObject({ status: 'paused', stripeKey: 'sub_v1', plan: 'basic' });
    expect(await es.verify(Membership)).toEqual([]);
  });

  test('rows are never rewritten: the stored data and schema_version stay as written', async () => {
    const rows = await dataSource.query('SELECT schema_version, data FROM membership_events WHERE id = $1', [ids.v1]);
    expect(rows).toEqual([{ schema_version: 1, data: { stripeKey: 'sub_v1' } }]);
  });

  test('an async reactor receives the upcast event, also for a job added under the old name', async () => {
    const [event] = await dataSource.query('SELECT position::text AS position FROM membership_events WHERE id = $1', [ids.alias]);
    // A job of the old release, in the outbox when the new release took over.
    await dataSource.query(
      `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('membership_events', $1, $2, 'Membership.Enabled', 'RecordActivation')`,
      [ids.alias, event.position],
    );
    await waitForReactors(es, { timeout: 15_000 });
    expect(seen.filter((entry) => entry.id === ids.alias)).toEqual([
      { id: ids.alias, className: 'MembershipActivated', type: 'Membership.Activated', plan: 'basic', seats: 1, schemaVersion: 1 },
    ]);
  });
});

describe('rows this code cannot read', () => {
  test('a row newer than the class knows raises EventSchemaVersionError on every read', async () => {
    const membership = await open(20);
    const id = await writeOldRow(membership, 'Membership.Activated', 4, { stripeKey: 'sub_future', plan: 'pro', seats: 2, tier: 'gold' });
    const message = `Membership.Activated event ${id} is stored with schema version 4, but this code knows versions up to 3: deploy the code that writes version 4 before reading its rows`;
    for (const read of [
      () => es.history(Membership, membership.id),
      () => dataSource.manager.findOneByOrFail(MembershipEvent, { id }),
      () => es.verify(Membership, { id: membership.id }),
    ]) {
      const error = await rejectionOf(read());
      expect(error).toBeInstanceOf(EventSchemaVersionError);
      expect((error as Error).message).toBe(message);
    }
  });

  test('an upcaster that throws raises EventUpcastError naming the event and the step', async () => {
    const membership = await open(21);
    const id = await writeOldRow(membership, 'Membership.Resized', 1, { size: 3 });
    const error = await rejectionOf(es.history(Membership, membership.id));
    expect(error).toBeInstanceOf(EventUpcastError);
    expect((error as Error).message).toBe(`Membership.Resized event ${id}: upcast[1] (version 1 to 2) threw: count is missing`);
  });

  test('upcast data that does not fit the @Data attributes is refused as invalid data', async () => {
    const membership = await open(22);
    await writeOldRow(membership, 'Membership.Activated', 2, { stripeKey: 'sub_x', plan: 7 });
    const error = await rejectionOf(es.history(Membership, membership.id));
    expect(error).toBeInstanceOf(InvalidEventDataError);
    expect((error as Error).message).toContain('plan');
  });
});

describe('declaring versions, upcasters and aliases', () => {
  test('a version without an upcaster from every earlier version fails at decoration', () => {
    class Gap {}
    expect(() => EventType('Gap.Happened', { version: 3, upcast: { 1: (data) => data } })(Gap)).toThrow(EventSourcingConfigError);
    expect(() => EventType('Gap.Happened', { version: 3, upcast: { 1: (data) => data } })(Gap)).toThrow(
      "@EventType('Gap.Happened') on Gap: version 3 needs an upcaster from every earlier version; upcast[2] is missing (give (data) => data when version 2 data already fits)",
    );
    expect(() => EventType('Gap.Happened', { version: 2, upcast: { 1: (data) => data, 2: (data) => data } })(Gap)).toThrow(
      "@EventType('Gap.Happened') on Gap: upcast has a step from version 2, but steps go from 1 to 1",
    );
    expect(() => EventType('Gap.Happened', { version: 0 })(Gap)).toThrow('version must be a positive integer, not 0');
  });

  test('the upcast testing helper gives the event an old row reads as, without a database', () => {
    const stored = { stripeKey: 'sub_1' };
    const event = upcast(MembershipActivated, stored, 1);
    expect(event).toBeInstanceOf(MembershipActivated);
    expect({ stripeKey: event.stripeKey, plan: event.plan, seats: event.seats, schemaVersion: event.schemaVersion }).toEqual({
      stripeKey: 'sub_1',
      plan: 'basic',
      seats: 1,
      schemaVersion: 1,
    });
    expect(stored).toEqual({ stripeKey: 'sub_1' });
    expect(() => upcast(MembershipActivated, stored, 5)).toThrow(EventSchemaVersionError);
    expect(() => upcast(MembershipResized, { size: 1 }, 1)).toThrow(EventUpcastError);
  });
});

@Aggregate()
@Entity()
class Clash {
  @PrimaryGeneratedColumn() id!: number;
  @AggregateVersion() version!: number;
}
@EventsOf(() => Clash)
abstract class ClashEvent extends AggregateEvent<Clash, 'clash'> {}
@EventType('Clash.Made', { creates: true })
class ClashMade extends ClashEvent {
  apply(clash: Clash): Clash {
    return clash;
  }
}
/** Claims, as its old name, the name another class writes under. */
@EventType('Clash.Done', { aliases: ['Clash.Made'] })
class ClashDone extends ClashEvent {
  apply(clash: Clash): Clash {
    return clash;
  }
}

test('an alias that is another class\'s name fails at attach, naming both classes', async () => {
  const clashing = await testDataSource('event_evolution_clash', [Clash, ClashEvent, ClashMade, ClashDone]);
  try {
    const error = await rejectionOf(EventSourcing.attach(clashing));
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect((error as Error).message).toBe("event type 'Clash.Made' is claimed by both ClashMade and ClashDone (as a name or an alias)");
  } finally {
    await clashing.destroy();
  }
});
