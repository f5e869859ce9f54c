import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ConformanceOptions } from './types.js';

/**
 * Loads the conformance options a module exports: the default export, `options`, or a function
 * (`default` or `createConformanceOptions`) returning them. The CLI and the `processes` group's worker
 * processes load options the same way, through this function. `module` is set to the resolved path when the
 * options do not name one, so the `processes` group can start workers.
 */
export async function loadOptions(modulePath: string): Promise<ConformanceOptions> {
  const path = resolve(modulePath);
  const loaded = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  let candidate = loaded.createConformanceOptions ?? loaded.options ?? loaded.default;
  // A CommonJS module imported from ESM arrives under `default`.
  if (candidate && typeof candidate === 'object' && !('create' in candidate)) {
    const nested = candidate as Record<string, unknown>;
    candidate = nested.createConformanceOptions ?? nested.options ?? nested.default ?? candidate;
  }
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  if (!candidate || typeof (candidate as ConformanceOptions).create !== 'function') {
    throw new Error(`${modulePath} exports no conformance options with a create() function`);
  }
  const options = candidate as ConformanceOptions;
  return options.module ? options : { ...options, module: path };
}
