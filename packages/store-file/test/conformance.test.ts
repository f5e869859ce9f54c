import { join } from 'node:path';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

// The `processes` group's workers load the options from this file (jest runs tests as CommonJS, so the
// options module cannot name itself through import.meta).
describeTokenStore('FileTokenStore', { ...createConformanceOptions(), module: join(__dirname, 'conformance-options.ts') });
