// #region imports
import type { EventSourcing } from 'typeorm-event-sourcing';
import { bullBoardAdapter } from 'typeorm-event-sourcing/bull-board';
// #endregion imports

/** docs/observability.md: the reactor queue as bull-board sees it. */
export function queuesForBullBoard(es: EventSourcing) {
  // #region adapter
  // Jobs show as 'SubscriptionConfirmation <- Subscription.Activated', each linked to its event.
  const queues = [bullBoardAdapter(es, { eventUrl: (event) => `/admin/events/${event.table}/${event.id}` })];
  // createBullBoard({ queues, serverAdapter }) with the server adapter of your framework
  // (@bull-board/express, @bull-board/fastify, @bull-board/nestjs), behind your authentication.
  // #endregion adapter
  return queues;
}
