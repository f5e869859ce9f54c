import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/cli.ts', 'src/conformance-url-options.ts'],
  format: ['esm'],
  dts: false,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
