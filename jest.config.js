/**
 * Tiers, one jest project each, so `npm test` stays one run (one --json result) while
 * `npm run test:unit` needs no server: only projects with tests selected run their globalSetup.
 *   unit         tests/unit: no database, no Redis
 *   integration  tests/integration, tests/package, examples (the docs' jest files): real PostgreSQL and Redis
 *   reliability  tests/reliability: child processes, private servers stopped and restarted
 */
const testTimeout = 60000;

/** Options every tier shares. */
const common = {
  rootDir: __dirname,
  testEnvironment: 'node',
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: { warnOnly: false } }],
  },
  moduleNameMapper: {
    '^typeorm-event-sourcing$': '<rootDir>/src/index.ts',
    '^typeorm-event-sourcing/testing$': '<rootDir>/src/testing/index.ts',
    '^typeorm-event-sourcing/bull-board$': '<rootDir>/src/bull-board/index.ts',
    '^typeorm-event-sourcing/opentelemetry$': '<rootDir>/src/opentelemetry/index.ts',
    '^typeorm-event-sourcing/browser$': '<rootDir>/src/browser/index.ts',
  },
  testTimeout,
};

/** Starts (or reuses) PostgreSQL and Redis, and opens the run's figures directory. */
const servers = '<rootDir>/tests/support/global-setup.ts';

module.exports = {
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/tests/unit'] },
    { ...common, displayName: 'integration', roots: ['<rootDir>/tests/integration', '<rootDir>/tests/package', '<rootDir>/examples'], globalSetup: servers },
    { ...common, displayName: 'reliability', roots: ['<rootDir>/tests/reliability'], globalSetup: servers },
  ],
  // After the run, the figures the tests recorded (tests/support/figures.ts), summed.
  reporters: ['default', '<rootDir>/tests/support/figures-reporter.js'],
  testTimeout,
  maxWorkers: 2,
};
