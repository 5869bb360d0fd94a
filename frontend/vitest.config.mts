import react from '@vitejs/plugin-react'
import { defineConfig } from 'vitest/config'
import { workspacePackages } from './workspace-packages.mts'

export default defineConfig({
  plugins: [react()],
  resolve: { alias: workspacePackages },
  test: {
    environment: 'jsdom',
    // The app's tests and the packages' (packages/*/src): one run, one setup.
    include: ['src/**/*.test.{ts,tsx}', 'packages/*/src/**/*.test.{ts,tsx}'],
    setupFiles: ['./src/renderer/src/test/setup.ts'],
    restoreMocks: true,
    unstubGlobals: true,
  },
})
