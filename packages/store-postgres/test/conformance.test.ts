import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions } from './conformance-options';

describeTokenStore('PostgresTokenStore', createConformanceOptions());
