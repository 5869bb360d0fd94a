/**
 * The `/stt-stream` wire protocol, mirroring `src/voxrelay/protocol/messages.py`.
 *
 * Client -> server: an optional `configure` text frame first, then binary audio
 * frames, then `finalize` (optional, any number) and `stop` (once).
 * Server -> client: JSON text frames, parsed by `parseServerMessage`.
 *
 * Rule every UI relies on: shown text = text before dictation + every final
 * (in order, joined as written text by `joinText`: no space before marks or line
 * breaks) + the current interim.
 */

// Client -> server.

export type Encoding = 'linear16' | 'webm' | 'ogg'

/** What the binary frames contain. Containers (webm/ogg) carry their own rate and channels. */
export type AudioFormat =
  | { encoding: 'linear16'; sample_rate: number; channels: 1 | 2 }
  | { encoding: 'webm' | 'ogg' }

/** Recognition options a client may set in `configure`; omitted means the engine's default. */
export interface StreamOptions {
  language?: string
  model?: string
  interim_results?: boolean
  /** ms of silence that ends an utterance (10..10000). */
  endpointing?: number
  utterance_end_ms?: number
  vad_events?: boolean
  punctuate?: boolean
  smart_format?: boolean
  keyterms?: string[]
  /**
   * Spoken punctuation: the gateway writes dictation commands as marks ("comma" -> ",",
   * "period" -> ".", "question mark" -> "?", "new line" -> "\n", "new paragraph" -> "\n\n",
   * "open quote"/"close quote" -> `"`…). A final may then be only a mark or a line break, or
   * start with one. Gateways refuse unknown configure fields, so send it only when on
   * (see `withDictation`).
   */
  dictation?: boolean
}

export interface Configure extends StreamOptions {
  action: 'configure'
  audio_format: AudioFormat
}

export interface Finalize {
  action: 'finalize'
}

export interface Stop {
  action: 'stop'
}

export type ClientMessage = Configure | Finalize | Stop

export const DEFAULT_STREAM_OPTIONS: Readonly<StreamOptions> = Object.freeze({
  interim_results: true,
  endpointing: 300,
})

/**
 * The `configure` frame for a capture format, with the default options under `options`.
 * With `dictation` on, the default endpointing is left to the gateway, which waits longer
 * (800 ms) so that a pause before "comma" does not end the utterance.
 */
export function configureMessage(audioFormat: AudioFormat, options: StreamOptions = {}): Configure {
  const { endpointing: _gatewaysChoice, ...dictationDefaults } = DEFAULT_STREAM_OPTIONS
  const defaults = options.dictation ? dictationDefaults : DEFAULT_STREAM_OPTIONS
  return { action: 'configure', audio_format: audioFormat, ...defaults, ...options }
}

/**
 * `options` with spoken punctuation on (`dictation: true`) or left out entirely (off):
 * a gateway without the option refuses a configure that names it, even as false.
 * `enabled` undefined keeps whatever `options` says.
 */
export function withDictation(options: StreamOptions | undefined, enabled: boolean | undefined): StreamOptions | undefined {
  if (enabled === undefined) return options
  const { dictation: _ignored, ...rest } = options ?? {}
  return enabled ? { ...rest, dictation: true } : rest
}

/** JSON text frame for a client message. */
export function encodeClientMessage(message: ClientMessage): string {
  return JSON.stringify(message)
}

// Server -> client.

export type ErrorCode =
  | 'bad_request'
  | 'unsupported_audio'
  | 'engine_unavailable'
  | 'engine_error'
  | 'limit_exceeded'
  | 'internal'

export interface Ready {
  type: 'ready'
  session_id: string
  engine: string
}

/** Provisional text of the current segment; replaces the previous interim. */
export interface InterimTranscript {
  type: 'interim_transcript'
  transcript: string
}

/** Committed text that never changes; also clears the current interim. */
export interface FinalTranscript {
  type: 'final_transcript'
  transcript: string
  start: number
  end: number
  speech_final: boolean
}

export interface SpeechStarted {
  type: 'speech_started'
  timestamp: number
}

export interface UtteranceEnd {
  type: 'utterance_end'
  last_word_end: number
}

/** Fatal ones are followed by a close (1003/1008/1009/1011/1013); others are not. */
export interface ErrorMessage {
  type: 'error'
  code: ErrorCode | string
  message: string
}

/** Something the client should know that does not end the session (e.g. `draining`). */
export interface Warning {
  type: 'warning'
  code: string
  message: string
}

/** Sent after `stop` once every final is out; the server then closes with 1000. */
export interface Stopped {
  type: 'stopped'
}

export type ServerMessage =
  | Ready
  | InterimTranscript
  | FinalTranscript
  | SpeechStarted
  | UtteranceEnd
  | ErrorMessage
  | Warning
  | Stopped

type Json = Record<string, unknown>

const isString = (v: unknown): v is string => typeof v === 'string'
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/**
 * Parse one server text frame.
 *
 * Returns null for frames this client does not understand (not JSON, unknown `type`,
 * missing fields), so a newer server can add message types without breaking it.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null
  const m = data as Json
  switch (m.type) {
    case 'ready':
      return { type: 'ready', session_id: String(m.session_id ?? ''), engine: String(m.engine ?? '') }
    case 'interim_transcript':
      return isString(m.transcript) ? { type: 'interim_transcript', transcript: m.transcript } : null
    case 'final_transcript':
      if (!isString(m.transcript)) return null
      return {
        type: 'final_transcript',
        transcript: m.transcript,
        start: isNumber(m.start) ? m.start : 0,
        end: isNumber(m.end) ? m.end : 0,
        speech_final: m.speech_final === true,
      }
    case 'speech_started':
      return { type: 'speech_started', timestamp: isNumber(m.timestamp) ? m.timestamp : 0 }
    case 'utterance_end':
      return { type: 'utterance_end', last_word_end: isNumber(m.last_word_end) ? m.last_word_end : 0 }
    case 'error':
      return { type: 'error', code: isString(m.code) ? m.code : 'internal', message: isString(m.message) ? m.message : '' }
    case 'warning':
      return { type: 'warning', code: isString(m.code) ? m.code : '', message: isString(m.message) ? m.message : '' }
    case 'stopped':
      return { type: 'stopped' }
    default:
      return null
  }
}

const ERROR_PREFIX: Record<ErrorCode, string> = {
  bad_request: 'The gateway rejected a request',
  unsupported_audio: 'The gateway cannot use this audio format',
  engine_unavailable: 'The speech engine is not available',
  engine_error: 'The speech engine failed',
  limit_exceeded: 'A gateway limit was exceeded',
  internal: 'The gateway hit an internal error',
}

/** A sentence for people from a server `error` frame. */
export function describeServerError(error: Pick<ErrorMessage, 'code' | 'message'>): string {
  const prefix = ERROR_PREFIX[error.code as ErrorCode] ?? `Gateway error (${error.code})`
  const detail = error.message.trim()
  return detail ? `${prefix}: ${detail}` : `${prefix}.`
}

const WARNING_TEXT: Record<string, string> = {
  draining: 'The dictation server is shutting down: this dictation ends after its last words.',
  reconnecting: 'The speech service connection dropped; reconnecting, your audio is kept.',
}

/**
 * A sentence for people from a server `warning` frame: a known code gets a plain sentence
 * (the server's detail is for logs), any other its message (or the code).
 */
export function describeServerWarning(warning: Pick<Warning, 'code' | 'message'>): string {
  return WARNING_TEXT[warning.code] ?? (warning.message.trim() || `Gateway warning (${warning.code}).`)
}

/** WebSocket close codes the server uses. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
} as const
