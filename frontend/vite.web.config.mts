import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'
import { keepWorkletAFile, workspacePackages } from './workspace-packages.mts'

const rendererRoot = fileURLToPath(new URL('./src/renderer', import.meta.url))
const outDir = fileURLToPath(new URL('../src/voxrelay/web', import.meta.url))
const gateway = process.env.VOXRELAY_GATEWAY_URL ?? 'http://127.0.0.1:8765'

// The renderer alone, for `voxrelay serve` to host at `/` (same-origin /stt-stream).
// `base: './'` keeps asset URLs relative, so the build works under any path.
export default defineConfig({
  root: rendererRoot,
  base: './',
  plugins: [react()],
  resolve: { alias: workspacePackages },
  build: {
    outDir,
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: keepWorkletAFile,
  },
  server: {
    // `npm run dev:web`: the UI with hot reload, proxying to a running gateway.
    proxy: {
      '/healthz': gateway,
      '/v1/auth': gateway,
      '/stt-stream': { target: gateway.replace(/^http/, 'ws'), ws: true },
    },
  },
})
