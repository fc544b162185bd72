// Test helpers, a separate entry point (`typeorm-event-sourcing/testing`) so production code
// does not load them.
export { waitForReactors, ReactorJobsFailedError, type FailedReactorJob, type WaitForReactorsOptions } from './wait-for-reactors';
export { eventMatchers, type EmittedData, type MatcherResult } from './event-matchers';
export type { EventSummary, ExpectedEvent } from './event-summary';
export { resetEventStore } from './reset-event-store';
export { given, Scenario, type ScenarioOutcome } from './scenario';
export { upcast } from './upcast';
export { createTestDatabase, type TestDatabase, type TestDatabaseOptions } from './test-database';
