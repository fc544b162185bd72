import type { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing, ReactorError, type Reactor, type ReactorContext } from 'typeorm-event-sourcing';
import { ActivateSubscription } from '../support/command-models';
import { testDataSource } from '../support/database';
import {
  FpMemo,
  FpMemoEdited,
  FpMemoWritten,
  FpNote,
  FpNoteEdited,
  FpNoteEventSubscriber,
  FpNoteWritten,
  FpTicket,
  FpTicketAged,
  FpTicketAudit,
  FpTicketClosed,
  FpTicketEscalated,
  FpTicketOpened,
  FpTicketRetitled,
  FpTicketSnoozed,
  fastPathEntities,
  listenedInserts,
} from '../support/fast-path-models';
import { LegacyAccount, LegacyAccountRenamed, legacyEntities } from '../support/legacy-models';
import { expectLockedWrite, expectOneStatementWrite, expectTransactionalWrite, inserts, StatementLog, withListing, writeShape, type LoggedStatement } from '../support/statement-log';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';
import { rejectionOf } from '../support/rejection';
import { eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * Where the one-statement write path must not be taken, and is not: the library does not know
 * the stored state (an instance made by manager.create or new, a partial select), a row from
 * before events, an apply that reads what only the stored row knows, trigger reactors, entity
 * listeners and subscribers on the events entity, `fastPath: false`, and an aggregate that just
 * missed (hot). Each falls back to a transaction of its own, visibly (START TRANSACTION ...
 * COMMIT): under the row lock (SELECT ... FOR UPDATE) where the stored state is unknown or the
 * aggregate hot, else with manager.save's UPDATE conditional on the version; and writes what the
 * locked path always wrote.
 */

const subscriptions = { aggregate: 'subscription', events: 'subscription_events' };
const tickets = { aggregate: 'fp_ticket', events: 'fp_ticket_events' };

const log = new StatementLog();
let dataSource: DataSource;
let es: EventSourcing;

/** Tickets the trigger reactor of a FpTicketClosed event retitles, through ctx.manager. */
const retitleFromTrigger = new WeakMap<FpTicketClosed, FpTicket>();

class AuditClosedTicket implements Reactor<FpTicketClosed> {
  async call(event: FpTicketClosed, ctx: ReactorContext) {
    if (event.reason === 'refuse') throw new Error('refused by the trigger');
    const [{ tx }] = await ctx.manager.query(`SELECT txid_current()::text AS tx`);
    await ctx.manager.save(ctx.manager.create(FpTicketAudit, { ticketId: event.aggregateId, note: event.reason, tx }));
    const target = retitleFromTrigger.get(event);
    if (target) await es.append(FpTicketRetitled.build({ fpTicket: target, title: 'retitled by a trigger' }), { manager: ctx.manager });
  }
}

beforeAll(async () => {
  dataSource = await testDataSource('fast_path_fallbacks', [...subscriptionEntities, ...legacyEntities, ...fastPathEntities], {
    logger: log,
    logging: true,
    subscribers: [FpNoteEventSubscriber],
  });
  es = await EventSourcing.attach(dataSource, { dispatcher: new Dispatcher().on(FpTicketClosed, { trigger: AuditClosedTicket }) });
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

async function createdSubscription(userId: number): Promise<number> {
  return (await es.append(SubscriptionCreated.build({ userId }))).aggregateId;
}

async function loadedTicket(title: string): Promise<FpTicket> {
  const { aggregateId } = await es.append(FpTicketOpened.build({ title }));
  return dataSource.manager.findOneByOrFail(FpTicket, { id: aggregateId });
}

const noFastAttempt = (statements: LoggedStatement[], tables: { aggregate: string; events: string }) => {
  const shape = expectLockedWrite(statements, tables);
  withListing(shape, () => expect(shape.oneStatementWrites).toEqual([]));
};

test.each([
  ['manager.create with an id', (id: number) => dataSource.manager.create(Subscription, { id })],
  ['new, with an id', (id: number) => Object.assign(new Subscription(), { id })],
  [
    'a partial select',
    (id: number) => dataSource.getRepository(Subscription).findOneOrFail({ where: { id }, select: { id: true, status: true, version: true } }),
  ],
])('an instance made by %s: the locked path, then the instance is known', async (_how, make) => {
  const id = await createdSubscription(31);
  await dataSource.query(`UPDATE subscription SET "viewCount" = 5 WHERE id = $1`, [id]);
  const subscription = await make(id);

  const locked = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'locked' })));

  noFastAttempt(locked.statements, subscriptions);
  expect(locked.value.version).toBe(2);
  // Columns the instance did not hold are neither lost in the row nor missing from the instance.
  expect(await subscriptionRow(dataSource, id)).toMatchObject({ userId: 31, status: 'pending', notes: ['locked'], viewCount: 5, version: 2 });
  expect(subscription).toMatchObject({ id, userId: 31, status: 'pending', notes: ['locked'], viewCount: 5, version: 2 });

  // Last written by the library: its stored state is known now.
  const fast = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'fast' })));
  expectOneStatementWrite(fast.statements, subscriptions, { only: true });
  expect(subscription).toMatchObject({ notes: ['locked', 'fast'], version: 3 });
  expect(await es.verify(Subscription, { id })).toEqual([]);
});

test('a row from before events (version 0): the locked path writes its baseline first; the next write is one statement', async () => {
  const accounts = { aggregate: 'legacy_account', events: 'legacy_account_events' };
  const [{ id }] = await dataSource.query(`INSERT INTO legacy_account (name, balance, settings) VALUES ('Acme', '10.50', '{"a":1}') RETURNING id`);
  const account = await dataSource.manager.findOneByOrFail(LegacyAccount, { id });
  expect(account.version).toBe(0);

  const first = await log.during(() => es.append(LegacyAccountRenamed.build({ legacyAccount: account, name: 'Acme Inc' })));

  const shape = expectLockedWrite(first.statements, accounts);
  withListing(shape, () => expect(shape.eventInserts).toHaveLength(2));
  expect(first.value.version).toBe(2);
  expect(account).toMatchObject({ name: 'Acme Inc', balance: '10.50', settings: { a: 1 }, version: 2 });

  const second = await log.during(() => es.append(LegacyAccountRenamed.build({ legacyAccount: account, name: 'Acme Ltd' })));
  expectOneStatementWrite(second.statements, accounts, { only: true });
  const rows = await dataSource.query(`SELECT version, type FROM legacy_account_events WHERE legacy_account_id = $1 ORDER BY version`, [id]);
  expect(rows).toEqual([
    { version: 1, type: 'LegacyAccount.Imported' },
    { version: 2, type: 'LegacyAccount.Renamed' },
    { version: 3, type: 'LegacyAccount.Renamed' },
  ]);
  expect(await es.verify(LegacyAccount, { id })).toEqual([]);
});

test('apply reading an excluded or a database-maintained column: the locked path, applied to the stored row', async () => {
  const ticket = await loadedTicket('control');
  const control = await log.during(() => es.append(FpTicketRetitled.build({ fpTicket: ticket, title: 'still fast' })));
  expectOneStatementWrite(control.statements, tickets, { only: true });

  // Changed behind the loaded instance's back, without a version bump: only the row knows.
  await dataSource.query(`UPDATE fp_ticket SET hits = 7 WHERE id = $1`, [ticket.id]);
  const escalated = await log.during(() => es.append(FpTicketEscalated.build({ fpTicket: ticket })));
  expectLockedWrite(escalated.statements, tickets);
  expect(ticket).toMatchObject({ status: 'escalated at 7 hits', hits: 7, version: 3 });

  const opened = new Date('2020-01-02T03:04:05.000Z');
  await dataSource.query(`UPDATE fp_ticket SET "openedAt" = $2 WHERE id = $1`, [ticket.id, opened]);
  const aged = await log.during(() => es.append(FpTicketAged.build({ fpTicket: ticket })));
  expectLockedWrite(aged.statements, tickets);
  expect(ticket.status).toBe('open since 2020-01-02T03:04:05.000Z');

  const touched = new Date('2021-05-06T07:08:09.000Z');
  await dataSource.query(`UPDATE fp_ticket SET "touchedAt" = $2 WHERE id = $1`, [ticket.id, touched]);
  const snoozed = await log.during(() => es.append(FpTicketSnoozed.build({ fpTicket: ticket })));
  expectLockedWrite(snoozed.statements, tickets);
  expect(ticket.status).toBe('snoozed after 2021-05-06T07:08:09.000Z');

  const [row] = await dataSource.query(`SELECT status, hits, version FROM fp_ticket WHERE id = $1`, [ticket.id]);
  expect(row).toEqual({ status: 'snoozed after 2021-05-06T07:08:09.000Z', hits: 7, version: 5 });
});

test('an event type with a trigger reactor: one transaction holds the event, its row and what the trigger wrote', async () => {
  const ticket = await loadedTicket('to close');

  const { value: event, statements } = await log.during(() => es.append(FpTicketClosed.build({ fpTicket: ticket, reason: 'done' })));

  const shape = writeShape(statements, tickets);
  // The locked path, or BEGIN + the one statement + the triggers + COMMIT: either way one transaction.
  withListing(shape, () => {
    expect([shape.transactions.length, shape.commits.length, shape.rollbacks.length]).toEqual([1, 1, 0]);
    expect(shape.statements.filter((s) => inserts(s.sql, 'fp_ticket_audit')).map((s) => s.runner)).toEqual([shape.eventInserts[0].runner]);
  });
  const audits = await dataSource.manager.findBy(FpTicketAudit, { ticketId: ticket.id });
  expect(audits.map((audit) => [audit.note, Number(audit.tx)])).toEqual([['done', event.txId]]);
  expect(ticket).toMatchObject({ status: 'closed', version: 2 });
  expect(await es.verify(FpTicket, { id: ticket.id })).toEqual([]);
});

test('a trigger reactor that throws: ReactorError, nothing written, instance and event put back; the next write goes through', async () => {
  const ticket = await loadedTicket('refusing');
  const before = { ...ticket };
  const event = FpTicketClosed.build({ fpTicket: ticket, reason: 'refuse' });

  const error = await rejectionOf(es.append(event));

  expect(error).toBeInstanceOf(ReactorError);
  expect(error.message).toBe(`reactor AuditClosedTicket failed on FpTicket.Closed of aggregate ${ticket.id}: refused by the trigger`);
  expect({ ...ticket }).toEqual(before);
  expect([event.id, event.version, event.createdAt, event.position, event.txId]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  expect(await dataSource.query(`SELECT version, status FROM fp_ticket WHERE id = $1`, [ticket.id])).toEqual([{ version: 1, status: 'open' }]);
  expect(await dataSource.query(`SELECT version FROM fp_ticket_events WHERE fp_ticket_id = $1`, [ticket.id])).toEqual([{ version: 1 }]);
  expect(await dataSource.manager.countBy(FpTicketAudit, { ticketId: ticket.id })).toBe(0);

  const accepted = await es.append(FpTicketClosed.build({ fpTicket: ticket, reason: 'accepted' }));
  expect(accepted.version).toBe(2);
  expect(ticket).toMatchObject({ status: 'closed', version: 2 });
});

test("a write from inside a trigger reactor, on a loaded instance: not the one-statement path, in the trigger's transaction", async () => {
  const closing = await loadedTicket('closing');
  const target = await loadedTicket('target');
  const event = FpTicketClosed.build({ fpTicket: closing, reason: 'cascade' });
  retitleFromTrigger.set(event, target);

  const { statements } = await log.during(() => es.append(event));

  const shape = writeShape(statements, tickets);
  withListing(shape, () => {
    expect([shape.transactions.length, shape.commits.length]).toEqual([1, 1]);
    // The trigger's write is an UPDATE of its own (locked or conditional) in that transaction, not a second one-statement write.
    expect(shape.oneStatementWrites.filter((s) => s.parameters?.includes(target.id))).toEqual([]);
    const targetWrites = shape.aggregateStatements.filter((s) => /^\s*UPDATE\b/i.test(s.sql) && s.parameters?.includes(target.id));
    expect(targetWrites.map((s) => s.runner)).toEqual([shape.transactions[0].runner]);
  });
  expect(target).toMatchObject({ title: 'retitled by a trigger', version: 2 });
  const [{ tx }] = await dataSource.query(`SELECT tx_id::float8 AS tx FROM fp_ticket_events WHERE fp_ticket_id = $1 AND version = 2`, [target.id]);
  expect(tx).toBe(event.txId);
  expect(await es.verify(FpTicket, { id: target.id })).toEqual([]);
});

test("entity listeners and subscribers of the application on an events entity: TypeORM's INSERT in a transaction, each listener runs once", async () => {
  const memos = { aggregate: 'fp_memo', events: 'fp_memo_events' };
  const notes = { aggregate: 'fp_note', events: 'fp_note_events' };
  listenedInserts.memo.length = 0;
  listenedInserts.note.length = 0;

  const memoCreated = await es.append(FpMemoWritten.build({ body: 'memo' }));
  const memo = await dataSource.manager.findOneByOrFail(FpMemo, { id: memoCreated.aggregateId });
  const memoEdit = await log.during(() => es.append(FpMemoEdited.build({ fpMemo: memo, body: 'memo edited' })));
  expectTransactionalWrite(memoEdit.statements, memos);

  const noteCreated = await es.append(FpNoteWritten.build({ body: 'note' }));
  const note = await dataSource.manager.findOneByOrFail(FpNote, { id: noteCreated.aggregateId });
  const noteEdit = await log.during(() => es.append(FpNoteEdited.build({ fpNote: note, body: 'note edited' })));
  expectTransactionalWrite(noteEdit.statements, notes);

  expect(listenedInserts).toEqual({ memo: [memoCreated.id, memoEdit.value.id], note: [noteCreated.id, noteEdit.value.id] });
  expect([memo.body, memo.version, note.body, note.version]).toEqual(['memo edited', 2, 'note edited', 2]);

  // Listeners of one events entity leave the others alone.
  const subscription = await loadSubscription(dataSource, await createdSubscription(32));
  const control = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription, note: 'fast' })));
  expectOneStatementWrite(control.statements, subscriptions, { only: true });
});

test('after a miss the aggregate is hot: its writes take the locked path for a second, other aggregates stay fast', async () => {
  const id = await createdSubscription(33);
  const [first, stale] = [await loadSubscription(dataSource, id), await loadSubscription(dataSource, id)];
  const other = await loadSubscription(dataSource, await createdSubscription(34));
  await es.append(SubscriptionNoteAdded.build({ subscription: first, note: 'first' }));

  const missed = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription: stale, note: 'missed' })));
  const missedAt = Date.now();
  const missShape = expectLockedWrite(missed.statements, subscriptions);
  withListing(missShape, () => expect(missShape.oneStatementWrites).toHaveLength(1));

  const reloaded = await loadSubscription(dataSource, id);
  const hot = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription: reloaded, note: 'hot' })));
  expect(Date.now() - missedAt).toBeLessThan(900);
  noFastAttempt(hot.statements, subscriptions);
  const elsewhere = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription: other, note: 'elsewhere' })));
  expectOneStatementWrite(elsewhere.statements, subscriptions, { only: true });

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, missedAt + 1100 - Date.now())));
  const cooledInstance = await loadSubscription(dataSource, id);
  const cooled = await log.during(() => es.append(SubscriptionNoteAdded.build({ subscription: cooledInstance, note: 'cooled' })));
  expectOneStatementWrite(cooled.statements, subscriptions, { only: true });

  expect((await eventRows(dataSource, id)).map((row) => [row.version, row.data.note ?? null])).toEqual([
    [1, null],
    [2, 'first'],
    [3, 'missed'],
    [4, 'hot'],
    [5, 'cooled'],
  ]);
  expect(await es.verify(Subscription, { id })).toEqual([]);
});

describe('EventSourcing.attach(dataSource, { fastPath: false })', () => {
  const offLog = new StatementLog();
  let off: DataSource;
  let offEs: EventSourcing;

  beforeAll(async () => {
    off = await testDataSource('fast_path_off', subscriptionEntities, { logger: offLog, logging: true });
    offEs = await EventSourcing.attach(off, { fastPath: false });
  });

  afterAll(async () => {
    await offEs?.close();
    await off?.destroy();
  });

  test('every write is a transaction of its own, never the one statement: creating event, es.append on a loaded instance, a command', async () => {
    const creating = await offLog.during(() => offEs.append(SubscriptionCreated.build({ userId: 35 })));
    const createShape = writeShape(creating.statements, subscriptions);
    withListing(createShape, () => {
      expect(createShape.transactions).toHaveLength(1);
      expect(createShape.oneStatementWrites).toEqual([]);
    });
    const subscription = await loadSubscription(off, creating.value.aggregateId);

    const appended = await offLog.during(() => offEs.append(SubscriptionNoteAdded.build({ subscription, note: 'locked' })));
    expectTransactionalWrite(appended.statements, subscriptions);
    const commanded = await offLog.during(() => ActivateSubscription.call({ subscription, stripeKey: 'sk_off' }, { manager: off.manager }));
    expectTransactionalWrite(commanded.statements, subscriptions);

    expect(subscription).toMatchObject({ version: 3, notes: ['locked'], status: 'active', stripeKey: 'sk_off' });
    expect(await subscriptionRow(off, subscription.id)).toMatchObject({ version: 3, notes: ['locked'], status: 'active', stripeKey: 'sk_off' });
    expect(await offEs.verify(Subscription)).toEqual([]);
  });
});
