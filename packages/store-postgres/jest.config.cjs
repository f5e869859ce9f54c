module.exports = {
  ...require('../../jest.base.cjs'),
  // Finds PostgreSQL (POSTGRES_URL, else 127.0.0.1:5432) or starts a throwaway server; tests read POSTGRES_URL.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};
