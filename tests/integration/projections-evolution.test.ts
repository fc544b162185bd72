import type { DataSource } from 'typeorm';
import { EventSchemaVersionError, EventSourcing, Projection, ProjectionError } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { Membership, MembershipActivated, MembershipOpened, membershipEntities } from '../support/evolution-models';
import { horizonPassed } from '../support/projection-read-model';
import { rejectionOf } from '../support/rejection';

/**
 * Projections read old event rows as the rest of the library does: upcast to the class's current
 * shape, and rows stored under an old name (an alias) as the renamed class; a row newer than the
 * code stops the projection with the named error, and nothing is skipped.
 */

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('projections_evolution', membershipEntities);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

async function open(userId: number): Promise<Membership> {
  const opened = await es.append(MembershipOpened.build({ userId }));
  return dataSource.manager.findOneByOrFail(Membership, { id: opened.aggregateId });
}

/** An event row as an older release wrote it: raw SQL, its type name and shape of the day. */
async function writeOldRow(membership: Membership, type: string, schemaVersion: number, data: object): Promise<number> {
  membership.version += 1;
  const [{ id }] = await dataSource.query(
    `INSERT INTO membership_events (membership_id, version, type, schema_version, data, metadata, created_at) VALUES ($1, $2, $3, $4, $5, '{}', now()) RETURNING id::int AS id`,
    [membership.id, membership.version, type, schemaVersion, JSON.stringify(data)],
  );
  return id;
}

test('old rows reach the handler upcast, rows of the old name as the renamed class, in (tx_id, position) order; a row newer than the code stops it with the named error', async () => {
  const seen: { id: number; className: string; type: string; stripeKey: string; plan: string; seats: number }[] = [];
  const projection = new Projection('activations').on(MembershipActivated, (event) => {
    seen.push({ id: event.id, className: event.constructor.name, type: event.type, stripeKey: event.stripeKey, plan: event.plan, seats: event.seats });
  });
  const v1Alias = await writeOldRow(await open(1), 'Membership.Enabled', 1, { stripeKey: 'sub_v1' });
  const v2 = await writeOldRow(await open(2), 'Membership.Activated', 2, { stripeKey: 'sub_v2', plan: 'pro' });
  const current = await es.append(MembershipActivated.build({ membership: await open(3), stripeKey: 'sub_v3', plan: 'team', seats: 5 }));
  await horizonPassed(dataSource);

  expect(await es.projections.catchUp(projection)).toEqual({ processed: 3 });
  expect(seen).toEqual([
    { id: v1Alias, className: 'MembershipActivated', type: 'Membership.Activated', stripeKey: 'sub_v1', plan: 'basic', seats: 1 },
    { id: v2, className: 'MembershipActivated', type: 'Membership.Activated', stripeKey: 'sub_v2', plan: 'pro', seats: 1 },
    { id: current.id, className: 'MembershipActivated', type: 'Membership.Activated', stripeKey: 'sub_v3', plan: 'team', seats: 5 },
  ]);

  // A rolling deploy: a newer release wrote version 4, which this code cannot read.
  const future = await writeOldRow(await open(4), 'Membership.Activated', 4, { stripeKey: 'sub_v4', plan: 'pro', seats: 2, tier: 'gold' });
  await horizonPassed(dataSource);
  const error = await rejectionOf(es.projections.catchUp(projection));
  expect(error).toBeInstanceOf(EventSchemaVersionError);
  expect(error).not.toBeInstanceOf(ProjectionError);
  const [status] = await es.projections.status();
  expect(status.lastError?.message).toBe(error.message);
  expect(status.lastError?.message).toContain(`event ${future} is stored with schema version 4`);
  expect(status.checkpoint).toEqual({ txId: current.txId, position: current.position });
  expect(seen).toHaveLength(3);
});
