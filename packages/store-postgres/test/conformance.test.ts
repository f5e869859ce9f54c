import { join } from 'node:path';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

// `module` lets the suite's worker processes load the same options and open the stores it shares.
describeTokenStore('PostgresTokenStore', { ...createConformanceOptions(), module: join(__dirname, 'conformance-options.ts') });
