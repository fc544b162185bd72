// Test helpers, a separate entry point (`typeorm-event-sourcing/testing`) so production code
// does not load them.
export { waitForReactors, type WaitForReactorsOptions } from './wait-for-reactors';
