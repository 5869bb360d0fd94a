/**
 * `useSpeechToText`: live dictation state for a React component.
 *
 * The hook is thin: all socket and audio work is in `SttClient`, all transcript
 * logic in the pure `sttReducer`. It creates one client per mount, subscribes in
 * `useEffect` and disposes it in the cleanup (which stops the captured tracks,
 * closes the AudioContext and the socket). `start` reads the latest options
 * through a ref, so callers may pass a fresh object on every render.
 */

import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react'
import {
  initialSttState,
  isActive,
  joinText,
  SttClient,
  sttReducer,
  withDictation,
  type CaptureMode,
  type MediaEnvironment,
  type StreamOptions,
  type SttStatus,
  type SttWarning,
  type TokenProvider,
} from '@voxrelay/client'

export interface UseSpeechToTextOptions {
  /** The gateway's `ws(s)://…/stt-stream` URL. */
  url: string
  /** `linear16` (AudioWorklet PCM, default) or `webm` (MediaRecorder Opus). */
  mode?: CaptureMode
  /** Recognition options for `configure`. */
  stream?: StreamOptions
  /**
   * Spoken punctuation ("comma", "new line"… become marks): true sends `dictation: true`
   * in `configure`; false leaves the field out. Read at `start`, like every option.
   */
  dictation?: boolean
  /** Timeouts, for tests and slow gateways. */
  connectTimeoutMs?: number
  stopTimeoutMs?: number
  /** A fresh connection token per start (gateways with auth on); none: connect without credentials. */
  tokenProvider?: TokenProvider
  /** Browser APIs; tests may inject stubs instead of patching globals. */
  environment?: () => MediaEnvironment
}

export interface SpeechToText {
  status: SttStatus
  /** Provisional text of the current segment ('' when none). */
  interim: string
  /** Every final of this dictation, in order, joined with `joinText`. */
  final: string
  /** The finals one by one, for joining after other text (see `draftText`). */
  finals: readonly string[]
  /** A sentence for people, or null. */
  error: string | null
  /**
   * The last server `warning` of the run (`draining`, upstream `reconnecting`…; `text` is a
   * sentence for people), or null. The session goes on; it is kept until the next start.
   */
  warning: SttWarning | null
  /** Input level 0..1 of the last audio frame (PCM mode), for a meter. */
  level: number
  /** `connecting`, `recording` or `stopping`. */
  isActive: boolean
  isRecording: boolean
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Clear the transcript and the error (the status stays if a run is active). */
  reset: () => void
}

export function useSpeechToText(options: UseSpeechToTextOptions): SpeechToText {
  const [state, dispatch] = useReducer(sttReducer, initialSttState)
  const [level, setLevel] = useState(0)
  const clientRef = useRef<SttClient | null>(null)
  const optionsRef = useRef(options)

  useEffect(() => {
    optionsRef.current = options
  })

  useEffect(() => {
    const client = new SttClient(optionsRef.current.environment)
    clientRef.current = client
    const unsubscribe = client.subscribe((event) => {
      if (event.type === 'level') setLevel(event.level)
      else dispatch(event)
    })
    return () => {
      unsubscribe()
      client.dispose()
      if (clientRef.current === client) clientRef.current = null
    }
  }, [])

  const start = useCallback(async () => {
    const { url, mode, stream, dictation, connectTimeoutMs, stopTimeoutMs, tokenProvider } = optionsRef.current
    await clientRef.current?.start({
      url,
      mode,
      stream: withDictation(stream, dictation),
      connectTimeoutMs,
      stopTimeoutMs,
      tokenProvider,
    })
  }, [])

  const stop = useCallback(async () => {
    await clientRef.current?.stop()
  }, [])

  const reset = useCallback(() => dispatch({ type: 'reset' }), [])

  const final = useMemo(() => joinText(...state.finals), [state.finals])

  return {
    status: state.status,
    interim: state.interim,
    final,
    finals: state.finals,
    error: state.error,
    warning: state.warning,
    level,
    isActive: isActive(state.status),
    isRecording: state.status === 'recording',
    start,
    stop,
    reset,
  }
}
