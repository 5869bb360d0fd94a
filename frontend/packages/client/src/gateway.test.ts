import { describe, expect, it } from 'vitest'
import { gatewayUrls } from './gateway'

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
