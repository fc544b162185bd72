// #region imports
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { SentMail } from '../subscriptions/sent-mail';
// #endregion imports

// #region mail-service
/**
 * Stands in for a mail provider: each mail is a row of sent_mails, unique per (reactor, event),
 * so a job delivered twice sends once.
 */
@Injectable()
export class MailService {
  async send(manager: EntityManager, key: { reactor: string; eventId: number }, recipient: string, subject: string): Promise<void> {
    await manager
      .createQueryBuilder()
      .insert()
      .into(SentMail)
      .values({ ...key, recipient, subject })
      .orIgnore()
      .execute();
  }
}
// #endregion mail-service
