/** What the preload exposes to the renderer as `window.voxrelay` (types only). */

export type AudioMode = 'linear16' | 'webm'

export interface VoxrelaySettings {
  /** The gateway's http(s) base URL, fixed for the window's lifetime (the CSP allows only it). */
  gatewayUrl: string
  /** How the renderer captures audio. */
  audioMode: AudioMode
}

export interface VoxrelayBridge {
  /** The gateway's http(s) base URL, e.g. `http://127.0.0.1:8765`. */
  getGatewayUrl(): string
  /** The saved settings. */
  getSettings(): Promise<VoxrelaySettings>
  /** Save the capture mode; resolves to the saved settings. */
  setAudioMode(mode: AudioMode): Promise<VoxrelaySettings>
}
