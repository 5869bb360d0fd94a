// @vitest-environment node
import { describe, expect, it } from 'vitest'
import {
  allowsPermissionCheck,
  appPathFor,
  contentSecurityPolicy,
  gatewayOrigins,
  grantsPermission,
  isAppUrl,
  mimeType,
  parseGatewayUrl,
} from './security'
import { gatewayOverride, sanitizeSettings } from './settings'

describe('contentSecurityPolicy', () => {
  const csp = contentSecurityPolicy('http://127.0.0.1:8765')
  const directive = (name: string) => csp.split('; ').find((d) => d.startsWith(`${name} `))

  it('allows only the gateway for network access', () => {
    expect(directive('connect-src')).toBe('connect-src http://127.0.0.1:8765 ws://127.0.0.1:8765')
  })

  it('allows only the app itself for code, and nothing by default', () => {
    expect(directive('default-src')).toBe("default-src 'none'")
    expect(directive('script-src')).toBe("script-src 'self'")
    expect(directive('worker-src')).toBe("worker-src 'self'")
    expect(directive('object-src')).toBe("object-src 'none'")
    expect(csp).not.toContain('unsafe-eval')
    expect(csp).not.toContain('unsafe-inline')
  })

  it('uses wss for an https gateway', () => {
    expect(gatewayOrigins('https://stt.example.com/base/')).toEqual(['https://stt.example.com', 'wss://stt.example.com'])
  })

  it('adds the dev server only in dev', () => {
    const dev = contentSecurityPolicy('http://127.0.0.1:8765', 'http://localhost:5173/')
    expect(dev).toContain('connect-src http://127.0.0.1:8765 ws://127.0.0.1:8765 http://localhost:5173 ws://localhost:5173')
  })
})

describe('permissions', () => {
  it('grants the microphone to the app and nothing else', () => {
    const page = 'app://voxrelay/index.html'
    expect(grantsPermission('media', { mediaTypes: ['audio'], requestingUrl: page })).toBe(true)
    expect(grantsPermission('media', { mediaTypes: ['audio', 'video'], requestingUrl: page })).toBe(false)
    expect(grantsPermission('media', { mediaTypes: ['video'], requestingUrl: page })).toBe(false)
    expect(grantsPermission('media', { mediaTypes: [], requestingUrl: page })).toBe(false)
    expect(grantsPermission('media', { mediaTypes: ['audio'], requestingUrl: 'https://evil.example/' })).toBe(false)
    for (const other of ['geolocation', 'notifications', 'clipboard-read', 'display-capture', 'openExternal']) {
      expect(grantsPermission(other, { mediaTypes: ['audio'], requestingUrl: page })).toBe(false)
    }
  })

  it('answers permission checks for audio from the app only', () => {
    expect(allowsPermissionCheck('media', 'app://voxrelay', { mediaType: 'audio' })).toBe(true)
    expect(allowsPermissionCheck('media', 'app://voxrelay', { mediaType: 'video' })).toBe(false)
    expect(allowsPermissionCheck('media', 'https://evil.example', { mediaType: 'audio' })).toBe(false)
    expect(allowsPermissionCheck('notifications', 'app://voxrelay', {})).toBe(false)
  })

  it('recognises the app and the dev server', () => {
    expect(isAppUrl('app://voxrelay/x')).toBe(true)
    expect(isAppUrl('app://voxrelay.evil/x')).toBe(false)
    expect(isAppUrl('http://localhost:5173/', 'http://localhost:5173')).toBe(true)
    expect(isAppUrl('http://localhost:5173/')).toBe(false)
    expect(isAppUrl('not a url')).toBe(false)
  })
})

describe('serving app://', () => {
  it('maps URLs to files inside the renderer folder only', () => {
    expect(appPathFor('app://voxrelay/')).toBe('index.html')
    expect(appPathFor('app://voxrelay/assets/a.js')).toBe('assets/a.js')
    // Dot segments are resolved by the URL parser and cannot climb above the root...
    expect(appPathFor('app://voxrelay/assets/%2e%2e/%2e%2e/secret')).toBe('secret')
    // ...and encoded slashes that would hide them are refused.
    expect(appPathFor('app://voxrelay/..%2f..%2fetc/passwd')).toBeNull()
    expect(appPathFor('app://other/index.html')).toBeNull()
    expect(mimeType('assets/pcm-worklet-x.js')).toBe('text/javascript; charset=utf-8')
  })
})

describe('settings', () => {
  it('validates the gateway URL', () => {
    expect(parseGatewayUrl('http://127.0.0.1:8765').origin).toBe('http://127.0.0.1:8765')
    expect(() => parseGatewayUrl('file:///etc/passwd')).toThrow()
    expect(() => parseGatewayUrl('http://user:pw@host/')).toThrow()
  })

  it('falls back to defaults for bad stored values', () => {
    expect(sanitizeSettings({ gatewayUrl: 'javascript:alert(1)', audioMode: 'mp3' })).toEqual({
      gatewayUrl: 'http://127.0.0.1:8765',
      audioMode: 'linear16',
    })
    expect(sanitizeSettings({ gatewayUrl: 'https://stt.example.com/', audioMode: 'webm' })).toEqual({
      gatewayUrl: 'https://stt.example.com',
      audioMode: 'webm',
    })
  })

  it('takes the gateway from --gateway-url or VOXRELAY_GATEWAY_URL', () => {
    expect(gatewayOverride(['electron', '.', '--gateway-url=http://h:1'], {})).toBe('http://h:1')
    expect(gatewayOverride([], { VOXRELAY_GATEWAY_URL: 'http://e:2' })).toBe('http://e:2')
    expect(gatewayOverride([], {})).toBeUndefined()
  })
})
