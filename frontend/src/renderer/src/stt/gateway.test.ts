import { describe, expect, it } from 'vitest'
import { currentGateway } from './gateway'

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
