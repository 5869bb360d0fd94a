/**
 * Transcript and status state of one dictation hook, as a pure reducer.
 *
 * The `SttClient` emits `SttClientEvent`s; the hook feeds them (plus `reset`) to
 * `sttReducer`. Nothing here touches the DOM, sockets or timers.
 */

import type { ServerMessage } from './protocol'

/** Where a dictation stands. Failures are their own states, like react-media-recorder's. */
export type SttStatus =
  | 'idle'
  | 'connecting' // asking for the microphone and opening the socket
  | 'recording' // audio is streaming
  | 'stopping' // `stop` sent; waiting for the last finals and `stopped`
  | 'permission_denied'
  | 'no_microphone'
  | 'gateway_unreachable'
  | 'error'

export type SttFailure = Extract<SttStatus, 'permission_denied' | 'no_microphone' | 'gateway_unreachable' | 'error'>

export const ACTIVE_STATUSES: ReadonlySet<SttStatus> = new Set(['connecting', 'recording', 'stopping'])
export const FAILURE_STATUSES: ReadonlySet<SttStatus> = new Set([
  'permission_denied',
  'no_microphone',
  'gateway_unreachable',
  'error',
])

export const isActive = (status: SttStatus): boolean => ACTIVE_STATUSES.has(status)
export const isFailure = (status: SttStatus): status is SttFailure => FAILURE_STATUSES.has(status)

/** What an `SttClient` tells its listeners. */
export type SttClientEvent =
  | { type: 'status'; status: Exclude<SttStatus, SttFailure> }
  | { type: 'server'; message: ServerMessage }
  /** `fatal`: the run is over and the status becomes `status`; otherwise only the message is shown. */
  | { type: 'error'; status: SttFailure; message: string; fatal: boolean }
  | { type: 'level'; level: number }

export type SttAction = SttClientEvent | { type: 'reset' }

export interface SttState {
  status: SttStatus
  /** Committed segments, in order, trimmed, never empty strings. */
  finals: readonly string[]
  interim: string
  error: string | null
}

export const initialSttState: SttState = Object.freeze({
  status: 'idle',
  finals: Object.freeze([]) as readonly string[],
  interim: '',
  error: null,
})

/**
 * The next state.
 *
 * A `connecting` status that starts a new run (from idle or a failure) clears the
 * transcript and the error: each dictation begins empty. `level` events are
 * ignored here (the hook keeps the level apart, so it does not churn this state).
 */
export function sttReducer(state: SttState, action: SttAction): SttState {
  switch (action.type) {
    case 'status': {
      if (action.status === state.status) return state
      if (action.status === 'connecting' && !isActive(state.status)) {
        return { status: 'connecting', finals: [], interim: '', error: null }
      }
      return { ...state, status: action.status }
    }
    case 'server':
      return onServerMessage(state, action.message)
    case 'error':
      return action.fatal
        ? { ...state, status: action.status, error: action.message }
        : { ...state, error: action.message }
    case 'reset':
      return {
        status: isActive(state.status) ? state.status : 'idle',
        finals: [],
        interim: '',
        error: null,
      }
    case 'level':
      return state
  }
}

function onServerMessage(state: SttState, message: ServerMessage): SttState {
  switch (message.type) {
    case 'interim_transcript': {
      const interim = message.transcript.trim()
      return interim === state.interim ? state : { ...state, interim }
    }
    case 'final_transcript': {
      const text = message.transcript.trim()
      return {
        ...state,
        finals: text ? [...state.finals, text] : state.finals,
        interim: '',
      }
    }
    default:
      return state
  }
}

// Text assembly: used by the reducer's selectors and by the thread's draft.

const NO_SPACE_BEFORE = /^[.,!?;:%)\]}'’”…]/
const ENDS_WITH_SPACE = /\s$/

/**
 * Join pieces of text with one space between words.
 *
 * Empty pieces are skipped; no space is added after whitespace (so a newline the
 * person typed stays a newline) or before closing punctuation.
 */
export function joinText(...parts: readonly string[]): string {
  let out = ''
  for (const raw of parts) {
    if (!raw) continue
    const piece = out ? raw.replace(/^[ \t]+/, '') : raw
    if (!piece) continue
    if (!out || ENDS_WITH_SPACE.test(out) || NO_SPACE_BEFORE.test(piece)) out += piece
    else out += ` ${piece}`
  }
  return out
}

/** Every final so far, space-joined. */
export const selectFinal = (state: SttState): string => joinText(...state.finals)
