/** Tiers: tests/unit (no database), tests/integration (real PostgreSQL and Redis), tests/reliability (child processes, private Redis), tests/package (npm pack). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: { warnOnly: false } }],
  },
  moduleNameMapper: {
    '^typeorm-event-sourcing$': '<rootDir>/src/index.ts',
    '^typeorm-event-sourcing/testing$': '<rootDir>/src/testing/index.ts',
  },
  globalSetup: '<rootDir>/tests/support/global-setup.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
