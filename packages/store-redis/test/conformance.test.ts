import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

describeTokenStore('RedisTokenStore', createConformanceOptions());
