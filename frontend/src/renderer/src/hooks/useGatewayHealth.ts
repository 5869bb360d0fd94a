/**
 * Polls the gateway's `/healthz` so the UI can disable dictation when STT is unavailable.
 *
 * Checks on mount, then every `intervalMs` while unavailable (to notice recovery)
 * and every `healthyIntervalMs` while available; `recheck()` checks now (the
 * thread calls it after a dictation fails).
 */

import { useCallback, useEffect, useState } from 'react'

export interface GatewayHealth {
  /** null until the first answer. */
  available: boolean | null
  /** Why it is unavailable, for a title/tooltip. */
  reason: string | null
  recheck: () => void
}

export interface HealthOptions {
  intervalMs?: number
  healthyIntervalMs?: number
  timeoutMs?: number
}

/** One health check: `[available, reason]`. */
export async function checkHealth(url: string, timeoutMs = 3000): Promise<[boolean, string | null]> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), timeoutMs)
  try {
    const response = await fetch(url, { cache: 'no-store', signal: controller.signal })
    if (response.ok) return [true, null]
    let detail = ''
    try {
      const body = (await response.json()) as { status?: string; detail?: string; error?: string }
      detail = body.detail ?? body.error ?? body.status ?? ''
    } catch {
      // Not JSON.
    }
    return [false, `the speech engine is not ready (HTTP ${response.status}${detail ? `: ${detail}` : ''})`]
  } catch {
    return [false, `the gateway at ${new URL(url).host} is not reachable`]
  } finally {
    clearTimeout(timer)
  }
}

export function useGatewayHealth(url: string, options: HealthOptions = {}): GatewayHealth {
  const { intervalMs = 3000, healthyIntervalMs = 30000, timeoutMs = 3000 } = options
  const [state, setState] = useState<{ available: boolean | null; reason: string | null }>({
    available: null,
    reason: null,
  })
  const [generation, setGeneration] = useState(0)

  useEffect(() => {
    let cancelled = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async (): Promise<void> => {
      const [available, reason] = await checkHealth(url, timeoutMs)
      if (cancelled) return
      setState((prev) => (prev.available === available && prev.reason === reason ? prev : { available, reason }))
      timer = setTimeout(() => void run(), available ? healthyIntervalMs : intervalMs)
    }
    void run()
    return () => {
      cancelled = true
      clearTimeout(timer)
    }
  }, [url, intervalMs, healthyIntervalMs, timeoutMs, generation])

  const recheck = useCallback(() => setGeneration((g) => g + 1), [])
  return { ...state, recheck }
}
