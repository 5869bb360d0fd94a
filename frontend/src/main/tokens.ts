/**
 * Connection tokens for the renderer: the main process holds the gateway key and
 * answers one IPC channel, `voxrelay:mint-token`, with a fresh single-use token from
 * the gateway's `POST /v1/auth/token` (sent with `Authorization: Bearer KEY` from
 * Node's fetch). The renderer gets the token only: never the key, never the response.
 *
 * No Electron import here (tests pass a fake `ipcMain`); `index.ts` calls
 * `registerTokenIpc(ipcMain, …)` once.
 */

import type { IpcMainInvokeEvent } from 'electron'

export const MINT_TOKEN_CHANNEL = 'voxrelay:mint-token'

export interface TokenSource {
  /** The gateway's http(s) base URL. */
  gatewayUrl: string
  /** The gateway key, or undefined (then no Authorization header: only a gateway with auth off mints). */
  apiKey: string | undefined
  fetch?: typeof fetch
  timeoutMs?: number
}

type Sender = Pick<IpcMainInvokeEvent, 'senderFrame'>

/** Mint one token; throws an Error whose message is for people (and never holds the key). */
export async function mintToken(source: TokenSource): Promise<string> {
  const { gatewayUrl, apiKey, timeoutMs = 10000 } = source
  const fetchFn = source.fetch ?? fetch
  const url = `${gatewayUrl.replace(/\/+$/, '')}/v1/auth/token`
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`
  let response: Response
  try {
    response = await fetchFn(url, { method: 'POST', headers, signal: AbortSignal.timeout(timeoutMs) })
  } catch {
    throw new Error(`Could not connect to the dictation gateway at ${gatewayUrl}. Is \`voxrelay serve\` running?`)
  }
  if (response.status === 401) {
    throw new Error(
      apiKey
        ? 'The gateway key was refused. Check VOXRELAY_API_KEY or "apiKey" in the settings file.'
        : 'The gateway needs a key: set VOXRELAY_API_KEY or "apiKey" in the settings file.',
    )
  }
  if (response.status === 429) throw new Error('Too many connection attempts; try again shortly.')
  if (!response.ok) throw new Error(`The gateway did not issue a connection token (HTTP ${response.status}).`)
  let token: unknown
  try {
    token = ((await response.json()) as { token?: unknown }).token
  } catch {
    token = undefined
  }
  if (typeof token !== 'string' || !token) throw new Error('The gateway sent no connection token.')
  return token
}

/**
 * Handle `voxrelay:mint-token`: only for the app's own top-level frame (`isAllowedUrl`,
 * i.e. `app://voxrelay/…`, or the dev server); resolves to the token string only.
 */
export function registerTokenIpc(
  ipc: { handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void },
  source: () => TokenSource,
  isAllowedUrl: (url: string) => boolean,
): void {
  ipc.handle(MINT_TOKEN_CHANNEL, async (event: Sender) => {
    if (!fromAppTopFrame(event, isAllowedUrl)) throw new Error('not allowed')
    return mintToken(source())
  })
}

export function fromAppTopFrame(event: Sender, isAllowedUrl: (url: string) => boolean): boolean {
  const frame = event.senderFrame
  if (!frame || frame.parent) return false
  return isAllowedUrl(frame.url)
}
