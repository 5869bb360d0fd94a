// @vitest-environment node
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { isAppUrl } from './security'
import { apiKeyFrom, SettingsStore } from './settings'
import { MINT_TOKEN_CHANNEL, mintToken, registerTokenIpc } from './tokens'

const KEY = 'vxk_secret_key_1234567890'
const GATEWAY = 'http://127.0.0.1:8765'

type Handler = (event: unknown, ...args: unknown[]) => Promise<unknown>

/** A fake `ipcMain` plus a fake gateway; returns the registered handler. */
function setup(answer: () => Response | Promise<Response> = () => tokenResponse('vxt_abc'), apiKey: string | null = KEY) {
  const handlers = new Map<string, Handler>()
  const ipcMain = { handle: vi.fn((channel: string, listener: Handler) => handlers.set(channel, listener)) }
  const fetch = vi.fn(async (_url: string | URL | Request, _init?: RequestInit) => answer())
  registerTokenIpc(
    ipcMain,
    () => ({ gatewayUrl: GATEWAY, apiKey: apiKey ?? undefined, fetch: fetch as unknown as typeof globalThis.fetch }),
    (url) => isAppUrl(url),
  )
  const invoke = (event: unknown) => handlers.get(MINT_TOKEN_CHANNEL)!(event)
  return { ipcMain, fetch, invoke }
}

const tokenResponse = (token: string) =>
  new Response(JSON.stringify({ token, expires_in: 60, subprotocol: 'bearer' }), { status: 200 })
const fromApp = { senderFrame: { url: 'app://voxrelay/index.html', parent: null } }

describe('voxrelay:mint-token (main process)', () => {
  it('registers exactly one channel', () => {
    const { ipcMain } = setup()
    expect(ipcMain.handle).toHaveBeenCalledTimes(1)
    expect(ipcMain.handle.mock.calls[0][0]).toBe('voxrelay:mint-token')
  })

  it("POSTs /v1/auth/token with the key from the main process and returns only the token", async () => {
    const { fetch, invoke } = setup()
    const result = await invoke(fromApp)
    expect(result).toBe('vxt_abc')
    expect(JSON.stringify(result)).not.toContain(KEY)
    const [url, init] = fetch.mock.calls[0]
    expect(url).toBe(`${GATEWAY}/v1/auth/token`)
    expect(init?.method).toBe('POST')
    expect((init?.headers as Record<string, string>).Authorization).toBe(`Bearer ${KEY}`)
  })

  it.each([
    ['another origin', { senderFrame: { url: 'https://evil.example/', parent: null } }],
    ['a file page', { senderFrame: { url: 'file:///tmp/x.html', parent: null } }],
    ['a subframe of the app', { senderFrame: { url: 'app://voxrelay/index.html', parent: {} } }],
    ['no frame', { senderFrame: null }],
  ])('refuses %s without calling the gateway', async (_name, event) => {
    const { fetch, invoke } = setup()
    await expect(invoke(event)).rejects.toThrow('not allowed')
    expect(fetch).not.toHaveBeenCalled()
  })

  it('a refused key: an error for people that never contains the key', async () => {
    const { invoke } = setup(() => new Response(JSON.stringify({ error: 'unauthorized' }), { status: 401 }))
    const error = (await invoke(fromApp).catch((e: unknown) => e)) as Error
    expect(error.message).toMatch(/^The gateway key was refused/)
    expect(error.message).not.toContain(KEY)
  })

  it('no key configured: no Authorization header; a gateway with auth off still mints', async () => {
    const { fetch, invoke } = setup(undefined, null)
    expect(await invoke(fromApp)).toBe('vxt_abc')
    expect((fetch.mock.calls[0][1]?.headers as Record<string, string>).Authorization).toBeUndefined()
  })

  it('an unreachable gateway, 429, 5xx and a body without a token are errors', async () => {
    const source = (answer: () => Promise<Response>) => ({
      gatewayUrl: `${GATEWAY}/`,
      apiKey: KEY,
      fetch: vi.fn(answer) as unknown as typeof globalThis.fetch,
    })
    await expect(mintToken(source(() => Promise.reject(new TypeError('fetch failed'))))).rejects.toThrow(
      /Could not connect to the dictation gateway/,
    )
    await expect(mintToken(source(async () => new Response('', { status: 429 })))).rejects.toThrow(/Too many/)
    await expect(mintToken(source(async () => new Response('', { status: 503 })))).rejects.toThrow(/HTTP 503/)
    await expect(mintToken(source(async () => new Response('{"x":1}')))).rejects.toThrow(/no connection token/)
  })
})

describe('the gateway key in settings', () => {
  it('comes from VOXRELAY_API_KEY, else "apiKey" in settings.json', () => {
    expect(apiKeyFrom({ VOXRELAY_API_KEY: ' env-key ' }, { apiKey: 'file-key' })).toBe('env-key')
    expect(apiKeyFrom({}, { apiKey: 'file-key' })).toBe('file-key')
    expect(apiKeyFrom({}, { apiKey: 7 })).toBeUndefined()
    expect(apiKeyFrom({}, null)).toBeUndefined()
  })

  it('is never part of the settings the renderer gets, and survives saving them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'voxrelay-settings-'))
    await writeFile(join(dir, 'settings.json'), JSON.stringify({ gatewayUrl: GATEWAY, apiKey: KEY }))
    const store = new SettingsStore(dir)
    const settings = await store.load()
    expect(JSON.stringify(settings)).not.toContain(KEY)
    expect(await store.loadApiKey({})).toBe(KEY)
    await store.save({ ...settings, audioMode: 'webm' })
    const saved = JSON.parse(await readFile(join(dir, 'settings.json'), 'utf8'))
    expect(saved).toMatchObject({ audioMode: 'webm', apiKey: KEY })
  })
})
