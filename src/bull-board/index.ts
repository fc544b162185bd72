// bull-board integration, a separate entry point (`typeorm-event-sourcing/bull-board`) so the
// core loads no part of the optional peer `@bull-board/api`.
export { bullBoardAdapter, type BullBoardAdapterOptions, type ReactorJobEvent } from '../observability/bull-board-adapter';
