import { renderHook, waitFor } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import { checkHealth, useGatewayHealth } from './useGatewayHealth'

const URL = 'http://gateway.test:8765/healthz'

describe('checkHealth', () => {
  it('is available on 200', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"status":"ok","engine":"local"}', { status: 200 })))
    expect(await checkHealth(URL)).toEqual([true, null])
  })

  it('explains a 503', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"status":"loading"}', { status: 503 })))
    expect(await checkHealth(URL)).toEqual([false, 'the speech engine is not ready (HTTP 503: loading)'])
  })

  it('explains an unreachable gateway', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    expect(await checkHealth(URL)).toEqual([false, 'the gateway at gateway.test:8765 is not reachable'])
  })
})

describe('useGatewayHealth', () => {
  it('starts unknown, then reports, and re-checks on demand', async () => {
    const fetch = vi.fn(async () => new Response('{}', { status: 200 }))
    vi.stubGlobal('fetch', fetch)
    const { result } = renderHook(() => useGatewayHealth(URL))
    expect(result.current.available).toBeNull()
    await waitFor(() => expect(result.current.available).toBe(true))
    fetch.mockImplementation(async () => Promise.reject(new TypeError('down')))
    result.current.recheck()
    await waitFor(() => expect(result.current.available).toBe(false))
    expect(result.current.reason).toMatch(/not reachable/)
  })
})
