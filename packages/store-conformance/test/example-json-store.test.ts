/**
 * The example store of docs/WRITING-A-STORE.md runs the whole suite here, so the example in the docs stays
 * correct as the suite grows.
 */

import { createConformanceOptions } from '../../../docs/examples/json-file-store.conformance';
import { describeTokenStore } from '../src/jest';

describeTokenStore('JsonFileTokenStore (docs/examples)', createConformanceOptions());
