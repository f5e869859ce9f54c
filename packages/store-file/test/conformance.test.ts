import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options.js';

describeTokenStore('FileTokenStore', createConformanceOptions());
