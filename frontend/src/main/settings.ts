/**
 * The shell's settings: `settings.json` in the user-data folder, overridden by
 * `--gateway-url=` on the command line or `VOXRELAY_GATEWAY_URL`.
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
    try {
      return sanitizeSettings(JSON.parse(await readFile(this.file, 'utf8')))
    } catch {
      return sanitizeSettings({})
    }
  }

  async save(settings: VoxrelaySettings): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true })
    await writeFile(this.file, `${JSON.stringify(settings, null, 2)}\n`, 'utf8')
  }
}
