// The event browser, a separate entry point (`typeorm-event-sourcing/browser`): server-rendered
// pages over events, aggregates and reactor jobs, as a plain Node request handler. It loads no
// optional peer (node:http types and the core only); its own entry keeps it out of the core.
export { createEventBrowser, type EventBrowserHandler } from './create-event-browser';
export type { EventBrowserOptions } from './event-browser-options';
