import { join } from 'node:path';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

// Our SQLite store, seen through Zoho's TokenStore interface and back: the bridge loses nothing.
describeTokenStore('SQLiteTokenStore through toZohoTokenStore and fromZohoTokenStore', {
  ...createConformanceOptions('sqlite-bridged'),
  module: join(__dirname, 'conformance-options.ts'),
});
