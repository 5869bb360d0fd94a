import react from '@vitejs/plugin-react'
import { defineConfig } from 'electron-vite'
import { keepWorkletAFile, workspacePackages } from './workspace-packages.mts'

// Default entries: src/main, src/preload, src/renderer (index.html). The package is
// CommonJS, so main and the sandboxed preload are emitted as CommonJS `.js`.
export default defineConfig({
  main: {},
  preload: {
    // A sandboxed preload cannot require() node_modules: bundle everything but electron.
    build: { externalizeDeps: false },
  },
  renderer: {
    plugins: [react()],
    resolve: { alias: workspacePackages },
    build: { assetsInlineLimit: keepWorkletAFile },
  },
})
