import { describe, expect, it, vi } from 'vitest'
import { bridgeTokenProvider, GatewayKeyAuth, KEY_REFUSED_MESSAGE, KEY_STORAGE_ITEM, TokenError } from './auth'

const BASE = 'http://gateway.test'
const json = (status: number, body: object) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })

/** A fake gateway: `GET /v1/auth` says `authRequired`; `POST /v1/auth/token` mints for `goodKey`. */
function gateway(authRequired: boolean, goodKey = 'k-good') {
  let n = 0
  const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
    const path = String(url).slice(BASE.length)
    if (path === '/v1/auth' && (init?.method ?? 'GET') === 'GET') return json(200, { auth_required: authRequired, token_ttl_s: 60 })
    if (path === '/v1/auth/token' && init?.method === 'POST') {
      const auth = new Headers(init.headers).get('Authorization')
      if (auth !== `Bearer ${goodKey}`) return json(401, { error: 'unauthorized', message: 'invalid API key' })
      return json(200, { token: `vxt_${++n}`, expires_in: 60, subprotocol: 'bearer' })
    }
    return json(404, {})
  })
  const posts = () => fetch.mock.calls.filter(([, init]) => init?.method === 'POST')
  return { fetch: fetch as unknown as typeof globalThis.fetch, mock: fetch, posts }
}

function setup(authRequired: boolean, storage: Storage = sessionStorage) {
  storage.clear()
  const gw = gateway(authRequired)
  const auth = new GatewayKeyAuth(BASE, { fetch: gw.fetch, storage })
  const changes = vi.fn()
  auth.subscribe(changes)
  return { auth, gw, storage, changes }
}

describe('GatewayKeyAuth (web build)', () => {
  it('auth off: no prompt, no token, no key request', async () => {
    const { auth, gw } = setup(false)
    expect(await auth.check()).toBe(false)
    expect(auth.getSnapshot()).toEqual({ authRequired: false, asking: false, refused: false })
    expect(await auth.tokenProvider()).toBeNull()
    expect(await auth.tokenProvider()).toBeNull()
    expect(gw.posts()).toEqual([])
    expect(gw.mock).toHaveBeenCalledTimes(1) // GET /v1/auth once per tab
  })

  it('auth on: check() opens the form; the key is asked once per tab and kept in sessionStorage', async () => {
    const { auth, gw, storage } = setup(true)
    expect(await auth.check()).toBe(true)
    expect(auth.getSnapshot().asking).toBe(true)

    const first = auth.tokenProvider()
    await vi.waitFor(() => expect(gw.mock).toHaveBeenCalledTimes(1))
    auth.submitKey('  k-good  ')
    expect(await first).toBe('vxt_1')
    expect(storage.getItem(KEY_STORAGE_ITEM)).toBe('k-good')
    expect(auth.getSnapshot().asking).toBe(false)

    // A fresh token per connect, with no second prompt.
    expect(await auth.tokenProvider()).toBe('vxt_2')
    expect(auth.getSnapshot().asking).toBe(false)
    const [url, init] = gw.posts()[1]
    expect(url).toBe(`${BASE}/v1/auth/token`)
    expect(new Headers(init?.headers).get('Authorization')).toBe('Bearer k-good')
    expect(init?.credentials).toBe('omit')
  })

  it('uses a key already stored in this tab without asking', async () => {
    sessionStorage.setItem(KEY_STORAGE_ITEM, 'k-good')
    const gw = gateway(true)
    const auth = new GatewayKeyAuth(BASE, { fetch: gw.fetch })
    expect(await auth.tokenProvider()).toBe('vxt_1')
    expect(auth.getSnapshot()).toEqual({ authRequired: true, asking: false, refused: false })
    sessionStorage.clear()
  })

  it('a 401 clears the stored key, reports "The gateway key was refused" and asks again', async () => {
    const { auth, storage } = setup(true)
    auth.submitKey('k-wrong')
    expect(storage.getItem(KEY_STORAGE_ITEM)).toBe('k-wrong')
    const refused = auth.tokenProvider()
    await expect(refused).rejects.toThrow(TokenError)
    await expect(refused).rejects.toThrow(KEY_REFUSED_MESSAGE)
    expect(KEY_REFUSED_MESSAGE).toMatch(/^The gateway key was refused/)
    expect(storage.getItem(KEY_STORAGE_ITEM)).toBeNull()
    expect(auth.getSnapshot()).toEqual({ authRequired: true, asking: true, refused: true })

    const next = auth.tokenProvider()
    await Promise.resolve()
    auth.submitKey('k-good')
    expect(await next).toBe('vxt_1')
    expect(auth.getSnapshot()).toEqual({ authRequired: true, asking: false, refused: false })
  })

  it('cancel fails the waiting connect with a sentence for people', async () => {
    const { auth } = setup(true)
    const waiting = auth.tokenProvider()
    await vi.waitFor(() => expect(auth.getSnapshot().asking).toBe(true))
    auth.cancel()
    await expect(waiting).rejects.toThrow('Dictation needs the gateway key.')
    expect(auth.getSnapshot().asking).toBe(false)
  })

  it('a gateway that does not answer: connect without a token (the socket reports it) and ask again later', async () => {
    const fetch = vi.fn().mockRejectedValueOnce(new TypeError('Failed to fetch'))
    fetch.mockResolvedValue(json(200, { auth_required: false }))
    const auth = new GatewayKeyAuth(BASE, { fetch: fetch as unknown as typeof globalThis.fetch, storage: null })
    expect(await auth.tokenProvider()).toBeNull()
    expect(auth.getSnapshot().authRequired).toBeNull()
    expect(await auth.check()).toBe(false)
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('minting that cannot reach the gateway is "gateway_unreachable"; 429 and odd answers are errors', async () => {
    const answers = [
      json(200, { auth_required: true }),
      Promise.reject(new TypeError('Failed to fetch')),
      new Response('{}', { status: 429, headers: { 'Retry-After': '5' } }),
      json(200, { nothing: true }),
    ]
    const fetch = vi.fn(() => answers.shift() as Promise<Response>)
    const auth = new GatewayKeyAuth(BASE, { fetch: fetch as unknown as typeof globalThis.fetch, storage: null })
    auth.submitKey('k')
    await expect(auth.tokenProvider()).rejects.toMatchObject({ status: 'gateway_unreachable' })
    await expect(auth.tokenProvider()).rejects.toThrow('Too many connection attempts; try again in 5 s.')
    await expect(auth.tokenProvider()).rejects.toThrow('The gateway sent no connection token.')
  })
})

describe('bridgeTokenProvider (Electron)', () => {
  it('returns the token from the preload, with no key in sight', async () => {
    const mintToken = vi.fn(async () => 'vxt_e')
    expect(await bridgeTokenProvider({ mintToken })()).toBe('vxt_e')
    expect(mintToken).toHaveBeenCalledWith()
  })

  it("strips ipcRenderer's wrapper from the main process's error", async () => {
    const mintToken = () =>
      Promise.reject(new Error("Error invoking remote method 'voxrelay:mint-token': Error: The gateway key was refused."))
    await expect(bridgeTokenProvider({ mintToken })()).rejects.toThrow(/^The gateway key was refused\.$/)
    const down = () => Promise.reject(new Error("Error invoking remote method 'x': Error: Could not connect to …"))
    await expect(bridgeTokenProvider({ mintToken: down })()).rejects.toMatchObject({ status: 'gateway_unreachable' })
  })
})
