import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType } from 'typeorm-event-sourcing';

/**
 * A small aggregate for DataSources with a `schema` option: no entity names a schema, so every
 * table lands in the DataSource's (or the search_path's, without one).
 */
@Aggregate()
@Entity()
export class Invoice {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) customer!: string;
  @Column({ type: 'int', default: 0 }) amount!: number;
  @Column({ type: 'varchar', default: 'draft' }) status!: string;
  @AggregateVersion() version!: number;
}

@EventsOf(() => Invoice)
export abstract class InvoiceEvent extends AggregateEvent<Invoice, 'invoice'> {}

@EventType('Invoice.Issued', { creates: true })
export class InvoiceIssued extends InvoiceEvent {
  @Data() customer!: string;
  @Data() amount!: number;
  apply(invoice: Invoice): Invoice {
    invoice.customer = this.customer;
    invoice.amount = this.amount;
    invoice.status = 'issued';
    return invoice;
  }
}

@EventType('Invoice.Paid')
export class InvoicePaid extends InvoiceEvent {
  @Data() reference!: string;
  apply(invoice: Invoice): Invoice {
    invoice.status = 'paid';
    return invoice;
  }
}

/** What the trigger reactor writes, in the event's transaction. */
@Entity()
export class InvoiceReceipt {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int' }) invoiceId!: number;
  @Column({ type: 'varchar' }) reference!: string;
}

export const billingEntities = [Invoice, InvoiceEvent, InvoiceIssued, InvoicePaid, InvoiceReceipt];
