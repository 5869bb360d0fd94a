/** Window typing for the renderer: the only thing it gets from the preload. */

import type { VoxrelayBridge } from './api'

declare global {
  interface Window {
    /** Present in Electron only; the web build talks to its own origin. */
    voxrelay?: VoxrelayBridge
  }
}

export type { AudioMode, VoxrelayBridge, VoxrelaySettings } from './api'
