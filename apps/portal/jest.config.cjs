module.exports = {
  ...require('../../jest.base.cjs'),
  // Finds PostgreSQL (or starts a throwaway one) once for all test files; tests read POSTGRES_URL.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};
