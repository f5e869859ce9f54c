const base = require('../jest.base.cjs');

// The smoke test starts the bench as a child process and waits for it: every server is loaded and timed.
module.exports = { ...base, testTimeout: 300000 };
