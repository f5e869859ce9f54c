const base = require('../../jest.base.cjs');

// Sources import siblings as `./x.js` (NodeNext); under jest those are the .ts files.
module.exports = { ...base, moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' } };
