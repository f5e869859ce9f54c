/** The reference store's conformance options: a fresh MemoryTokenStore per case; it lives in one process only. */
import { MemoryTokenStore } from '@crm/core';
import type { ConformanceOptions } from '@crm/store-conformance';

export default { create: () => new MemoryTokenStore(), sharedAcrossProcesses: false } satisfies ConformanceOptions;
