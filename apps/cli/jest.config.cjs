module.exports = {
  ...require('../../jest.base.cjs'),
  // Finds the servers (or starts throwaway ones) once for all test files; tests read POSTGRES_URL, REDIS_URL, MYSQL_URL.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};
