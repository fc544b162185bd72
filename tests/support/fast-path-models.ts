import 'reflect-metadata';
import { AfterInsert, Column, CreateDateColumn, Entity, EventSubscriber, type EntitySubscriberInterface, type InsertEvent, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType } from 'typeorm-event-sourcing';

/**
 * Models whose events must leave the one-statement write path for the locked one: an `apply`
 * reading an excluded or a database-maintained column, an event type with a trigger reactor,
 * entity listeners and subscribers of the user's own on an events entity. Table names no other
 * model uses.
 */

@Aggregate({ exclude: ['hits'] })
@Entity('fp_ticket')
export class FpTicket {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) title!: string;
  @Column({ type: 'varchar', default: 'open' }) status!: string;
  /** Counted outside events (excluded): only the stored row knows it. */
  @Column({ type: 'int', default: 0 }) hits!: number;
  @CreateDateColumn({ type: 'timestamptz' }) openedAt!: Date;
  @UpdateDateColumn({ type: 'timestamptz' }) touchedAt!: Date;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpTicket)
export abstract class FpTicketEvent extends AggregateEvent<FpTicket, 'fpTicket'> {}

@EventType('FpTicket.Opened', { creates: true })
export class FpTicketOpened extends FpTicketEvent {
  @Data() title!: string;
  apply(ticket: FpTicket): void {
    ticket.title = this.title;
  }
}

@EventType('FpTicket.Retitled')
export class FpTicketRetitled extends FpTicketEvent {
  @Data() title!: string;
  apply(ticket: FpTicket): void {
    ticket.title = this.title;
  }
}

/** Reads the excluded `hits`: a copy of the stored state the library cannot vouch for. */
@EventType('FpTicket.Escalated')
export class FpTicketEscalated extends FpTicketEvent {
  apply(ticket: FpTicket): void {
    ticket.status = `escalated at ${ticket.hits} hits`;
  }
}

/** Reads the create-date column, which PostgreSQL maintains. */
@EventType('FpTicket.Aged')
export class FpTicketAged extends FpTicketEvent {
  apply(ticket: FpTicket): void {
    ticket.status = `open since ${new Date(ticket.openedAt).toISOString()}`;
  }
}

/** Reads the update-date column, which PostgreSQL maintains. */
@EventType('FpTicket.Snoozed')
export class FpTicketSnoozed extends FpTicketEvent {
  apply(ticket: FpTicket): void {
    ticket.status = `snoozed after ${new Date(ticket.touchedAt).toISOString()}`;
  }
}

/** Has a trigger reactor (see the tests' dispatcher). */
@EventType('FpTicket.Closed')
export class FpTicketClosed extends FpTicketEvent {
  @Data() reason!: string;
  apply(ticket: FpTicket): void {
    ticket.status = 'closed';
  }
}

/** What the trigger reactor of FpTicketClosed writes, in the event's transaction. */
@Entity('fp_ticket_audit')
export class FpTicketAudit {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) ticketId!: number;
  @Column({ type: 'varchar' }) note!: string;
  @Column({ type: 'bigint' }) tx!: string;
}

// --- entity listeners and subscribers of the user's own on an events entity ---------------------

/** Inserted event ids, by the entity listener of FpMemoEvent and the subscriber of FpNoteEvent. */
export const listenedInserts: { memo: number[]; note: number[] } = { memo: [], note: [] };

@Aggregate()
@Entity('fp_memo')
export class FpMemo {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) body!: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpMemo)
export abstract class FpMemoEvent extends AggregateEvent<FpMemo, 'fpMemo'> {
  @AfterInsert()
  recordInsert(): void {
    listenedInserts.memo.push(this.id);
  }
}

@EventType('FpMemo.Written', { creates: true })
export class FpMemoWritten extends FpMemoEvent {
  @Data() body!: string;
  apply(memo: FpMemo): void {
    memo.body = this.body;
  }
}

@EventType('FpMemo.Edited')
export class FpMemoEdited extends FpMemoEvent {
  @Data() body!: string;
  apply(memo: FpMemo): void {
    memo.body = this.body;
  }
}

@Aggregate()
@Entity('fp_note')
export class FpNote {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) body!: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpNote)
export abstract class FpNoteEvent extends AggregateEvent<FpNote, 'fpNote'> {}

@EventType('FpNote.Written', { creates: true })
export class FpNoteWritten extends FpNoteEvent {
  @Data() body!: string;
  apply(note: FpNote): void {
    note.body = this.body;
  }
}

@EventType('FpNote.Edited')
export class FpNoteEdited extends FpNoteEvent {
  @Data() body!: string;
  apply(note: FpNote): void {
    note.body = this.body;
  }
}

/** A subscriber of the application's own, on FpNote's events only: give it in `subscribers`. */
@EventSubscriber()
export class FpNoteEventSubscriber implements EntitySubscriberInterface<FpNoteEvent> {
  listenTo() {
    return FpNoteEvent;
  }
  afterInsert(event: InsertEvent<FpNoteEvent>): void {
    listenedInserts.note.push(event.entity.id);
  }
}

export const fastPathEntities = [
  FpTicket,
  FpTicketEvent,
  FpTicketOpened,
  FpTicketRetitled,
  FpTicketEscalated,
  FpTicketAged,
  FpTicketSnoozed,
  FpTicketClosed,
  FpTicketAudit,
  FpMemo,
  FpMemoEvent,
  FpMemoWritten,
  FpMemoEdited,
  FpNote,
  FpNoteEvent,
  FpNoteWritten,
  FpNoteEdited,
];
