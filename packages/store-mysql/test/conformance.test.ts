import { describeTokenStore } from '@crm/store-conformance/jest';
import { createConformanceOptions, createZohoTableOptions } from './conformance-options';

// The suite's worker processes load the options from this file.
const optionsModule = require.resolve('./conformance-options');
describeTokenStore('MySQLTokenStore', { ...createConformanceOptions(), module: optionsModule });
describeTokenStore("MySQLTokenStore on Zoho DBStore's table", { ...createZohoTableOptions(), module: optionsModule });
