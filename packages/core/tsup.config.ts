import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/store-kit.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // One copy of each class for both entries, in the CommonJS build too (instanceof works across them).
  splitting: true,
});
