/**
 * The app shell: finds the gateway (same origin on the web, the preload's setting
 * in Electron), watches its health, picks the token provider (the preload's
 * `mintToken` in Electron, the per-tab key form on the web), and renders the thread.
 *
 * `?audio=webm` in the page URL selects MediaRecorder WebM/Opus instead of PCM.
 */

import { useEffect, useMemo, useState } from 'react'
import { Thread } from './components/thread'
import { useGatewayHealth } from './hooks/useGatewayHealth'
import { bridgeTokenProvider, GatewayKeyAuth, type CaptureMode, type TokenProvider } from '@voxrelay/client'
import { currentGateway } from './stt/gateway'

function initialMode(): CaptureMode {
  const fromUrl = new URLSearchParams(window.location.search).get('audio')
  return fromUrl === 'webm' ? 'webm' : 'linear16'
}

export function App(): React.JSX.Element {
  const gateway = useMemo(() => currentGateway(), [])
  const health = useGatewayHealth(gateway.health)
  const [mode, setMode] = useState<CaptureMode>(initialMode)
  // Electron: the main process mints tokens with the key it holds. Web: ask for the key
  // once per tab when `GET /v1/auth` says auth is on, and mint a token per dictation.
  const auth = useMemo<{ tokenProvider: TokenProvider; keyAuth?: GatewayKeyAuth }>(() => {
    const bridge = window.voxrelay
    if (bridge) return { tokenProvider: bridgeTokenProvider(bridge) }
    const keyAuth = new GatewayKeyAuth(gateway.base)
    return { tokenProvider: keyAuth.tokenProvider, keyAuth }
  }, [gateway.base])

  // Open the key form on load when the gateway needs a key this tab does not have.
  useEffect(() => {
    void auth.keyAuth?.check()
  }, [auth, health.available])

  // In Electron, the saved setting wins over the default.
  useEffect(() => {
    let cancelled = false
    void window.voxrelay
      ?.getSettings()
      .then((settings) => {
        if (!cancelled && settings.audioMode) setMode(settings.audioMode)
      })
      .catch(() => undefined)
    return () => {
      cancelled = true
    }
  }, [])

  const changeMode = (next: CaptureMode): void => {
    setMode(next)
    void window.voxrelay?.setAudioMode(next).catch(() => undefined)
  }

  const healthText =
    health.available == null ? 'checking…' : health.available ? 'ready' : `unavailable (${health.reason ?? 'unknown'})`

  return (
    <div className="app">
      <header className="app-header">
        <h1>voxrelay</h1>
        <p className="app-gateway" data-testid="gateway-status" data-available={String(health.available)}>
          Speech gateway {gateway.base}: {healthText}
        </p>
        <label className="app-mode">
          Audio
          <select
            aria-label="Audio format"
            value={mode}
            onChange={(event) => changeMode(event.target.value as CaptureMode)}
          >
            <option value="linear16">PCM 16 kHz (AudioWorklet)</option>
            <option value="webm">WebM/Opus (MediaRecorder)</option>
          </select>
        </label>
      </header>
      <main className="app-main">
        <Thread
          sttUrl={gateway.stream}
          sttAvailable={health.available}
          sttUnavailableReason={health.reason}
          audioMode={mode}
          onSttError={health.recheck}
          tokenProvider={auth.tokenProvider}
          keyPrompt={auth.keyAuth}
        />
      </main>
    </div>
  )
}
