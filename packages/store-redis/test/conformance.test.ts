import { join } from 'node:path';
import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

// `module` lets the processes group's workers load these options (and call openShared) in their own processes.
describeTokenStore('RedisTokenStore', { ...createConformanceOptions(), module: join(__dirname, 'conformance-options.ts') });
