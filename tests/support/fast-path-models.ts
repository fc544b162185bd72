import 'reflect-metadata';
import { AfterInsert, Column, CreateDateColumn, DeleteDateColumn, Entity, EventSubscriber, type EntitySubscriberInterface, type InsertEvent, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
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

// --- values TypeORM converts: a uuid key, a transformer, simple-json, an enum ---------------------

/** numeric read back as a number. */
const asNumber = { to: (value: number | null) => value, from: (value: string | null) => (value === null ? null : Number(value)) };

@Aggregate()
@Entity('fp_meter')
export class FpMeter {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ type: 'numeric', precision: 12, scale: 3, default: 0, transformer: asNumber }) reading!: number;
  @Column({ type: 'simple-json', nullable: true }) calibration!: { factor: number } | null;
  @Column({ type: 'enum', enum: ['off', 'on'], default: 'off' }) state!: 'off' | 'on';
  @Column({ type: 'bigint', default: 0 }) pulses!: string;
  @Column({ type: 'timestamptz', nullable: true }) readAt!: Date | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpMeter)
export abstract class FpMeterEvent extends AggregateEvent<FpMeter, 'fpMeter'> {}

@EventType('FpMeter.Installed', { creates: true })
export class FpMeterInstalled extends FpMeterEvent {
  @Data() factor!: number;
  apply(meter: FpMeter): void {
    meter.calibration = { factor: this.factor };
    meter.state = 'on';
  }
}

@EventType('FpMeter.Read')
export class FpMeterRead extends FpMeterEvent {
  @Data() value!: number;
  apply(meter: FpMeter): void {
    meter.reading = meter.reading + this.value;
    meter.pulses = String(BigInt(meter.pulses) + 1n);
    meter.readAt = this.createdAt;
  }
}

// --- columns TypeORM hides: select: false, soft deletion ------------------------------------------

/** A password hash TypeORM never loads unless asked (`select: false`), and events never decide. */
@Aggregate({ exclude: ['passwordHash'] })
@Entity('fp_account')
export class FpAccount {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) email!: string;
  @Column({ type: 'varchar', select: false, default: 'secret-hash' }) passwordHash?: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpAccount)
export abstract class FpAccountEvent extends AggregateEvent<FpAccount, 'fpAccount'> {}

@EventType('FpAccount.Opened', { creates: true })
export class FpAccountOpened extends FpAccountEvent {
  @Data() email!: string;
  apply(account: FpAccount): void {
    account.email = this.email;
  }
}

@EventType('FpAccount.EmailChanged')
export class FpAccountEmailChanged extends FpAccountEvent {
  @Data() email!: string;
  apply(account: FpAccount): void {
    account.email = this.email;
  }
}

/** Soft-deletable: TypeORM's queries leave out rows whose deletedAt is set. */
@Aggregate()
@Entity('fp_doc')
export class FpDoc {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) title!: string;
  @DeleteDateColumn({ type: 'timestamptz' }) deletedAt!: Date | null;
  @AggregateVersion() version!: number;
}

@EventsOf(() => FpDoc)
export abstract class FpDocEvent extends AggregateEvent<FpDoc, 'fpDoc'> {}

@EventType('FpDoc.Drafted', { creates: true })
export class FpDocDrafted extends FpDocEvent {
  @Data() title!: string;
  apply(doc: FpDoc): void {
    doc.title = this.title;
  }
}

@EventType('FpDoc.Retitled')
export class FpDocRetitled extends FpDocEvent {
  @Data() title!: string;
  apply(doc: FpDoc): void {
    doc.title = this.title;
  }
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
  FpMeter,
  FpMeterEvent,
  FpMeterInstalled,
  FpMeterRead,
  FpAccount,
  FpAccountEvent,
  FpAccountOpened,
  FpAccountEmailChanged,
  FpDoc,
  FpDocEvent,
  FpDocDrafted,
  FpDocRetitled,
  FpMemo,
  FpMemoEvent,
  FpMemoWritten,
  FpMemoEdited,
  FpNote,
  FpNoteEvent,
  FpNoteWritten,
  FpNoteEdited,
];
