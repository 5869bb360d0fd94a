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
  /**
   * A fresh single-use token for one `/stt-stream` connection, minted by the main
   * process with the gateway key it holds (the renderer never sees the key). Offer it
   * as `new WebSocket(url, ['bearer', token])` within 60 s. Rejects with a sentence for people.
   */
  mintToken(): Promise<string>
}
