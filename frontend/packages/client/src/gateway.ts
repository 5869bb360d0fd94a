/**
 * A gateway's URLs from its base URL (pure functions).
 */

export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8765'

export interface GatewayUrls {
  /** `http(s)://host[:port]` with no trailing slash. */
  base: string
  /** `GET` → 200 `{"status":"ok"}` when the engine is ready, 503 otherwise. */
  health: string
  /** The dictation WebSocket. */
  stream: string
}

/**
 * The gateway's URLs from its base URL (`http(s)://host:port[/prefix]`).
 *
 * Throws on anything but an absolute http(s) URL.
 */
export function gatewayUrls(baseUrl: string): GatewayUrls {
  const url = new URL(baseUrl)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`gateway URL must be http(s), not ${url.protocol}`)
  }
  const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`
  const ws = `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}${url.pathname.replace(/\/+$/, '')}`
  return { base, health: `${base}/healthz`, stream: `${ws}/stt-stream` }
}
