// #region imports
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, Unique } from 'typeorm';
// #endregion imports

// #region sent-mail
/** Stands in for a mail provider: one row per mail "sent" by the mail reactors. */
@Entity('sent_mails')
@Unique(['reactor', 'eventId'])
export class SentMail {
  @PrimaryGeneratedColumn() id!: number;
  /** The reactor that sent it; with `eventId`, what makes a second delivery a no-op. */
  @Column({ type: 'varchar' }) reactor!: string;
  @Column({ type: 'int' }) eventId!: number;
  @Column({ type: 'varchar' }) recipient!: string;
  @Column({ type: 'varchar' }) subject!: string;
  @CreateDateColumn({ type: 'timestamptz' }) sentAt!: Date;
}
// #endregion sent-mail
