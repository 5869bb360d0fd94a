/**
 * Preload (sandboxed, context-isolated): exposes `window.voxrelay` with named
 * functions only. The renderer never sees `ipcRenderer` or any Node API.
 *
 * The gateway URL comes from the main process as `--voxrelay-gateway-url=` in
 * `webPreferences.additionalArguments`.
 */

import { contextBridge, ipcRenderer } from 'electron'
import type { AudioMode, VoxrelayBridge, VoxrelaySettings } from './api'

const GATEWAY_ARG = '--voxrelay-gateway-url='
const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8765'

const gatewayUrl = process.argv.find((arg) => arg.startsWith(GATEWAY_ARG))?.slice(GATEWAY_ARG.length) || DEFAULT_GATEWAY_URL

const bridge: VoxrelayBridge = {
  getGatewayUrl: (): string => gatewayUrl,
  getSettings: (): Promise<VoxrelaySettings> => ipcRenderer.invoke('voxrelay:get-settings'),
  setAudioMode: (mode: AudioMode): Promise<VoxrelaySettings> => ipcRenderer.invoke('voxrelay:set-audio-mode', mode),
  // No arguments: the renderer cannot choose the gateway or see the key.
  mintToken: (): Promise<string> => ipcRenderer.invoke('voxrelay:mint-token'),
}

contextBridge.exposeInMainWorld('voxrelay', bridge)
