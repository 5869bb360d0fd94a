/**
 * The shell's settings: `settings.json` in the user-data folder, overridden by
 * `--gateway-url=` on the command line or `VOXRELAY_GATEWAY_URL`. The gateway key
 * (`VOXRELAY_API_KEY`, or `"apiKey"` in the same file) is read separately and never
 * reaches the renderer.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { AudioMode, VoxrelaySettings } from '../preload/api'
import { DEFAULT_GATEWAY_URL, parseGatewayUrl } from './security'

export const AUDIO_MODES: readonly AudioMode[] = ['linear16', 'webm']

export const isAudioMode = (value: unknown): value is AudioMode => AUDIO_MODES.includes(value as AudioMode)

/** Settings from stored JSON, with anything missing or invalid replaced by the defaults. */
export function sanitizeSettings(raw: unknown): VoxrelaySettings {
  const data = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
  let gatewayUrl = DEFAULT_GATEWAY_URL
  if (typeof data.gatewayUrl === 'string') {
    try {
      gatewayUrl = parseGatewayUrl(data.gatewayUrl).href.replace(/\/$/, '')
    } catch {
      // Keep the default.
    }
  }
  return { gatewayUrl, audioMode: isAudioMode(data.audioMode) ? data.audioMode : 'linear16' }
}

/** The gateway URL from argv or the environment, if given. */
export function gatewayOverride(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  const arg = argv.find((a) => a.startsWith('--gateway-url='))
  return arg?.slice('--gateway-url='.length) || env.VOXRELAY_GATEWAY_URL || undefined
}

export class SettingsStore {
  private readonly file: string

  constructor(userDataDir: string) {
    this.file = join(userDataDir, 'settings.json')
  }

  async load(): Promise<VoxrelaySettings> {
    return sanitizeSettings(await this.raw())
  }

  /** The gateway key (`VOXRELAY_API_KEY`, else the file's `"apiKey"`); main process only. */
  async loadApiKey(env: NodeJS.ProcessEnv): Promise<string | undefined> {
    return apiKeyFrom(env, await this.raw())
  }

  /** Save the settings, keeping a stored `"apiKey"` (which is not part of `VoxrelaySettings`). */
  async save(settings: VoxrelaySettings): Promise<void> {
    const stored = await this.raw()
    const apiKey = typeof stored.apiKey === 'string' ? { apiKey: stored.apiKey } : {}
    await mkdir(dirname(this.file), { recursive: true })
    await writeFile(this.file, `${JSON.stringify({ ...settings, ...apiKey }, null, 2)}\n`, { encoding: 'utf8', mode: 0o600 })
  }

  private async raw(): Promise<Record<string, unknown>> {
    try {
      const data: unknown = JSON.parse(await readFile(this.file, 'utf8'))
      return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {}
    } catch {
      return {}
    }
  }
}

/**
 * The gateway key for minting tokens: `VOXRELAY_API_KEY`, else `"apiKey"` in settings.json.
 * It stays in the main process: `sanitizeSettings` (what the renderer gets) drops it.
 */
export function apiKeyFrom(env: NodeJS.ProcessEnv, stored: unknown): string | undefined {
  const fromEnv = env.VOXRELAY_API_KEY?.trim()
  if (fromEnv) return fromEnv
  const data = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>
  return typeof data.apiKey === 'string' && data.apiKey.trim() ? data.apiKey.trim() : undefined
}
