import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/jest.ts', 'src/cli.ts', 'src/worker.ts'],
  // __dirname in the ESM build too: the processes group finds dist/worker.js next to itself.
  shims: true,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
