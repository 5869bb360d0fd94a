import { fileURLToPath } from 'node:url'

/**
 * The app builds `@voxrelay/client` and `@voxrelay/react` from their sources in
 * packages/ (one copy of the code, no package build needed first, hot reload in dev).
 * What other apps install is the packed build of the same sources.
 */
export const workspacePackages = {
  '@voxrelay/client': fileURLToPath(new URL('./packages/client/src/index.ts', import.meta.url)),
  '@voxrelay/react': fileURLToPath(new URL('./packages/react/src/index.ts', import.meta.url)),
}

/** Vite inlines small assets as data: URLs; the capture worklet must stay a file (CSP `script-src 'self'`). */
export const keepWorkletAFile = (file: string): boolean | undefined =>
  file.endsWith('pcm-worklet.js') ? false : undefined
