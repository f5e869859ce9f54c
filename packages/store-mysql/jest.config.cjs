// A MariaDB/MySQL server is found or started once for all test files; its URL reaches them as MYSQL_URL.
module.exports = {
  ...require('../../jest.base.cjs'),
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // Sources import './x.js' (NodeNext); jest resolves the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};
