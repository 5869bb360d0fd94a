/**
 * Pure security policy for the Electron shell: the renderer's Content-Security-Policy,
 * the gateway URL check, and which permission requests are granted.
 */

export const APP_SCHEME = 'app'
export const APP_HOST = 'voxrelay'
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`
export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8765'

/** Normalise a gateway base URL; throws unless it is an absolute http(s) URL. */
export function parseGatewayUrl(value: string): URL {
  const url = new URL(value)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`the gateway URL must be http(s): ${value}`)
  }
  if (url.username || url.password) throw new Error('the gateway URL must not contain credentials')
  url.hash = ''
  url.search = ''
  return url
}

/** The gateway's origins: http(s) for `/healthz`, ws(s) for `/stt-stream`. */
export function gatewayOrigins(gatewayUrl: string): [string, string] {
  const url = parseGatewayUrl(gatewayUrl)
  const ws = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return [url.origin, `${ws}//${url.host}`]
}

/**
 * The renderer's CSP: its own code only, and network access to the gateway only.
 *
 * `devServer` (electron-vite dev) additionally allows the dev server and its HMR
 * socket, and the inline React Refresh preamble.
 */
export function contentSecurityPolicy(gatewayUrl: string, devServer?: string): string {
  const [httpOrigin, wsOrigin] = gatewayOrigins(gatewayUrl)
  const connect = [httpOrigin, wsOrigin]
  const script = ["'self'"]
  if (devServer) {
    const dev = new URL(devServer)
    connect.push(dev.origin, `ws://${dev.host}`)
    script.push("'unsafe-inline'")
  }
  return [
    "default-src 'none'",
    `script-src ${script.join(' ')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect.join(' ')}`,
    "worker-src 'self'",
    "media-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
}

/** Is this URL one of the app's own pages (the custom scheme, or the dev server)? */
export function isAppUrl(url: string, devServer?: string): boolean {
  try {
    const origin = new URL(url).origin
    if (url.startsWith(`${APP_ORIGIN}/`) || url === APP_ORIGIN) return true
    return devServer !== undefined && origin === new URL(devServer).origin
  } catch {
    return false
  }
}

/** Grant a permission request only for the microphone (audio, no video), from the app's pages. */
export function grantsPermission(
  permission: string,
  details: { mediaTypes?: readonly string[]; requestingUrl?: string },
  devServer?: string,
): boolean {
  if (permission !== 'media') return false
  const types = details.mediaTypes ?? []
  if (types.length === 0 || types.some((type) => type !== 'audio')) return false
  return isAppUrl(details.requestingUrl ?? '', devServer)
}

/** Answer a permission check: only `media` for audio, from the app's origin. */
export function allowsPermissionCheck(
  permission: string,
  origin: string,
  details: { mediaType?: string },
  devServer?: string,
): boolean {
  return permission === 'media' && details.mediaType === 'audio' && isAppUrl(origin, devServer)
}

/** The path inside the renderer folder for an `app://voxrelay/...` URL, or null if it escapes it. */
export function appPathFor(url: string): string | null {
  const parsed = new URL(url)
  if (parsed.protocol !== `${APP_SCHEME}:` || parsed.host !== APP_HOST) return null
  const path = decodeURIComponent(parsed.pathname)
  if (path.includes('\0') || path.split('/').includes('..')) return null
  return path === '/' || path === '' ? 'index.html' : path.replace(/^\/+/, '')
}

const MIME: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  wasm: 'application/wasm',
}

export function mimeType(path: string): string {
  const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase()
  return MIME[ext] ?? 'application/octet-stream'
}
