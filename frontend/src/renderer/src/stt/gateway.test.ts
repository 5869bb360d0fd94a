import { describe, expect, it } from 'vitest'
import { currentGateway, gatewayUrls } from './gateway'

describe('gatewayUrls', () => {
  it('derives health and stream URLs', () => {
    expect(gatewayUrls('http://127.0.0.1:8765')).toEqual({
      base: 'http://127.0.0.1:8765',
      health: 'http://127.0.0.1:8765/healthz',
      stream: 'ws://127.0.0.1:8765/stt-stream',
    })
    expect(gatewayUrls('https://stt.example.com/voice/').stream).toBe('wss://stt.example.com/voice/stt-stream')
  })

  it('rejects non-http URLs', () => {
    expect(() => gatewayUrls('ftp://x')).toThrow()
  })
})

describe('currentGateway', () => {
  it('uses the same origin in the web build', () => {
    const win = { location: { protocol: 'https:', origin: 'https://dictate.example' } } as Window
    expect(currentGateway(win).stream).toBe('wss://dictate.example/stt-stream')
  })

  it("uses the Electron bridge's gateway when present", () => {
    const win = {
      location: { protocol: 'app:', origin: 'null' },
      voxrelay: { getGatewayUrl: () => 'http://10.0.0.2:9000' },
    } as unknown as Window
    expect(currentGateway(win).health).toBe('http://10.0.0.2:9000/healthz')
  })

  it('falls back to the default gateway for other schemes', () => {
    const win = { location: { protocol: 'file:', origin: 'null' } } as Window
    expect(currentGateway(win).base).toBe('http://127.0.0.1:8765')
  })
})
