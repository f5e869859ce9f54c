// globalSetup finds or starts Redis and starts a three-master Redis Cluster; tests read their addresses from
// REDIS_URL and REDIS_CLUSTER_NODES.
module.exports = {
  ...require('../../jest.base.cjs'),
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};
