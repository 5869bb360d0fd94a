import { copyFileSync, existsSync } from 'node:fs'
import { defineConfig } from 'tsup'

// ESM + declarations into dist/. No source maps: the tarball holds only what runs.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  target: 'es2022',
  dts: true,
  clean: true,
  sourcemap: false,
  treeshake: true,
  async onSuccess() {
    // The capture worklet ships as its own file next to index.js: the client loads it with
    // `new URL('./pcm-worklet.js', import.meta.url)`, which every bundler and browser resolves.
    if (existsSync('src/pcm-worklet.js')) copyFileSync('src/pcm-worklet.js', 'dist/pcm-worklet.js')
  },
})
