/**
 * Connection tokens for `/stt-stream`, with no React.
 *
 * A `TokenProvider` is called before every dictation start. It resolves to a fresh
 * single-use token (the client then offers `Sec-WebSocket-Protocol: bearer, TOKEN`),
 * or to `null` when the gateway needs no credentials; it rejects with a `TokenError`
 * whose message is shown to the person.
 *
 * - Web build: `GatewayKeyAuth` asks `GET /v1/auth` whether auth is on. When it is, it
 *   asks the person for the gateway key once per tab (the thread's key form), keeps it
 *   in `sessionStorage`, and mints a token with `POST /v1/auth/token` for every connect.
 *   A 401 forgets the key and asks again.
 * - Electron: `bridgeTokenProvider` calls the preload's `mintToken()`; the main process
 *   holds the key, so the renderer never sees it.
 *
 * Call order (web): `subscribe(listener)` (the key form), optionally `check()` on load
 * (opens the form early when a key is needed), then `tokenProvider()` per connect;
 * `submitKey(key)` / `cancel()` answer the form.
 */

import type { SttFailure } from './reducer'

/** A fresh token per connect, or null to connect without credentials. */
export type TokenProvider = () => Promise<string | null>

/** Why no token could be had, as a sentence for people. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly status: SttFailure = 'error',
  ) {
    super(message)
    this.name = 'TokenError'
  }
}

/** The `sessionStorage` entry holding the key (per tab, gone when the tab closes). */
export const KEY_STORAGE_ITEM = 'voxrelay.gatewayKey'

export const KEY_REFUSED_MESSAGE = 'The gateway key was refused. Enter the key again and press the microphone.'
export const KEY_NEEDED_MESSAGE = 'Dictation needs the gateway key.'

/** What the key form shows. */
export interface KeyPromptState {
  /** `GET /v1/auth`'s answer; null until known. */
  authRequired: boolean | null
  /** The form is open. */
  asking: boolean
  /** The last key was refused (the form says so). */
  refused: boolean
}

export interface GatewayKeyAuthOptions {
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null
  fetch?: typeof fetch
  /** For each request. */
  timeoutMs?: number
}

type Waiter = { resolve: (key: string) => void; reject: (error: Error) => void }

export class GatewayKeyAuth {
  private readonly storage: GatewayKeyAuthOptions['storage']
  private readonly fetchFn: typeof fetch
  private readonly timeoutMs: number
  private readonly listeners = new Set<() => void>()
  private readonly waiters: Waiter[] = []
  private state: KeyPromptState = { authRequired: null, asking: false, refused: false }
  /** The key when sessionStorage is unavailable. */
  private memoryKey: string | null = null
  private pendingCheck: Promise<boolean | null> | null = null

  /** `base`: the gateway's http(s) base URL (this page's origin in the web build). */
  constructor(
    private readonly base: string,
    options: GatewayKeyAuthOptions = {},
  ) {
    this.storage = options.storage === undefined ? sessionStorageOrNull() : options.storage
    this.fetchFn = options.fetch ?? ((...args) => globalThis.fetch(...args))
    this.timeoutMs = options.timeoutMs ?? 10000
  }

  // Public methods for the key form (useSyncExternalStore).

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  getSnapshot = (): KeyPromptState => this.state

  /** Keep the key for this tab and hand it to a waiting connect. Blank keys are ignored. */
  submitKey(key: string): void {
    const value = key.trim()
    if (!value) return
    safely(() => this.storage?.setItem(KEY_STORAGE_ITEM, value))
    this.memoryKey = value
    this.update({ asking: false, refused: false })
    for (const waiter of this.waiters.splice(0)) waiter.resolve(value)
  }

  /** Close the form; a waiting connect fails with "Dictation needs the gateway key." */
  cancel(): void {
    this.update({ asking: false })
    for (const waiter of this.waiters.splice(0)) waiter.reject(new TokenError(KEY_NEEDED_MESSAGE))
  }

  /**
   * Ask `GET /v1/auth` (once per tab, unless it failed); when auth is on and no key is
   * stored, open the form. Resolves to `auth_required`, or null when the gateway did not answer.
   */
  check(): Promise<boolean | null> {
    if (this.state.authRequired !== null) return Promise.resolve(this.state.authRequired)
    this.pendingCheck ??= this.fetchAuthRequired().finally(() => {
      this.pendingCheck = null
    })
    return this.pendingCheck
  }

  // Public methods for SttClient.

  /** A token for one connect (see `TokenProvider`). */
  tokenProvider: TokenProvider = async () => {
    const required = await this.check()
    // Auth off, or the gateway did not answer: connect as before; the socket reports the outcome.
    if (required !== true) return null
    const key = this.storedKey() ?? (await this.askForKey())
    return this.mint(key)
  }

  // Private helpers.

  private storedKey(): string | null {
    let key: string | null = null
    safely(() => {
      key = this.storage?.getItem(KEY_STORAGE_ITEM) ?? null
    })
    return key ?? this.memoryKey
  }

  private forgetKey(): void {
    safely(() => this.storage?.removeItem(KEY_STORAGE_ITEM))
    this.memoryKey = null
  }

  private askForKey(): Promise<string> {
    this.update({ asking: true })
    return new Promise<string>((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  private async fetchAuthRequired(): Promise<boolean | null> {
    let response: Response
    try {
      response = await this.request(`${this.base}/v1/auth`, { method: 'GET' })
    } catch {
      return null
    }
    // A gateway without /v1/auth predates auth: it needs no credentials.
    let required = false
    if (response.ok) {
      try {
        required = ((await response.json()) as { auth_required?: unknown }).auth_required === true
      } catch {
        return null
      }
    } else if (response.status !== 404) {
      return null
    }
    this.update({ authRequired: required, asking: required && this.storedKey() === null })
    return required
  }

  private async mint(key: string): Promise<string> {
    let response: Response
    try {
      response = await this.request(`${this.base}/v1/auth/token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}` },
      })
    } catch {
      throw new TokenError(
        `Could not connect to the dictation gateway at ${this.base}. Is \`voxrelay serve\` running?`,
        'gateway_unreachable',
      )
    }
    if (response.status === 401) {
      this.forgetKey()
      this.update({ asking: true, refused: true })
      throw new TokenError(KEY_REFUSED_MESSAGE)
    }
    if (response.status === 429) {
      const wait = response.headers.get('Retry-After')
      throw new TokenError(`Too many connection attempts; try again${wait ? ` in ${wait} s` : ' shortly'}.`)
    }
    if (!response.ok) {
      throw new TokenError(`The gateway did not issue a connection token (HTTP ${response.status}).`)
    }
    let token: unknown
    try {
      token = ((await response.json()) as { token?: unknown }).token
    } catch {
      token = undefined
    }
    if (typeof token !== 'string' || !token) throw new TokenError('The gateway sent no connection token.')
    return token
  }

  private async request(url: string, init: RequestInit): Promise<Response> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.timeoutMs)
    try {
      return await this.fetchFn(url, { ...init, cache: 'no-store', credentials: 'omit', signal: controller.signal })
    } finally {
      clearTimeout(timer)
    }
  }

  private update(change: Partial<KeyPromptState>): void {
    const next = { ...this.state, ...change }
    const same = (Object.keys(next) as (keyof KeyPromptState)[]).every((k) => next[k] === this.state[k])
    if (same) return
    this.state = next
    for (const listener of [...this.listeners]) listener()
  }
}

/** The Electron provider: the main process mints with the key it holds. */
export function bridgeTokenProvider(bridge: { mintToken(): Promise<string | null> }): TokenProvider {
  return async () => {
    try {
      return await bridge.mintToken()
    } catch (error) {
      // ipcRenderer.invoke wraps the main process's error: "Error invoking remote method '…': Error: MESSAGE".
      const text = error instanceof Error ? error.message : String(error)
      const message = text.replace(/^Error invoking remote method '[^']*': (?:\w*Error: )?/, '')
      throw new TokenError(message, message.startsWith('Could not connect') ? 'gateway_unreachable' : 'error')
    }
  }
}

function sessionStorageOrNull(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null
  } catch {
    return null // Storage disabled: the key lives in memory for this page.
  }
}

function safely(action: () => void): void {
  try {
    action()
  } catch {
    // Storage full or disabled.
  }
}
