/**
 * Transcript and status state of one dictation hook, as a pure reducer.
 *
 * The `SttClient` emits `SttClientEvent`s; the hook feeds them (plus `reset`) to
 * `sttReducer`. Nothing here touches the DOM, sockets or timers.
 */

import { describeServerWarning, type ServerMessage } from './protocol'

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
  /** Committed segments, in order, never empty; see `cleanTranscript` (a line break alone is a segment). */
  finals: readonly string[]
  interim: string
  error: string | null
  /**
   * The last server `warning` of this run (`draining`, upstream `reconnecting`…): the session
   * goes on, but the person should know. `text` is a sentence for people. Cleared when a new
   * run starts and by `reset`.
   */
  warning: SttWarning | null
}

export interface SttWarning {
  code: string
  /** The server's own message. */
  message: string
  /** A sentence for people (`describeServerWarning`). */
  text: string
}

export const initialSttState: SttState = Object.freeze({
  status: 'idle',
  finals: Object.freeze([]) as readonly string[],
  interim: '',
  error: null,
  warning: null,
})

/**
 * The next state.
 *
 * A `connecting` status that starts a new run (from idle or a failure) clears the
 * transcript, the error and the warning: each dictation begins empty. A server
 * `warning` is kept (the latest one) until then, so it can still be read after the
 * run it ended. `level` events are
 * ignored here (the hook keeps the level apart, so it does not churn this state).
 */
export function sttReducer(state: SttState, action: SttAction): SttState {
  switch (action.type) {
    case 'status': {
      if (action.status === state.status) return state
      if (action.status === 'connecting' && !isActive(state.status)) {
        return { status: 'connecting', finals: [], interim: '', error: null, warning: null }
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
        warning: null,
      }
    case 'level':
      return state
  }
}

function onServerMessage(state: SttState, message: ServerMessage): SttState {
  switch (message.type) {
    case 'interim_transcript': {
      const interim = cleanTranscript(message.transcript)
      return interim === state.interim ? state : { ...state, interim }
    }
    case 'final_transcript': {
      const text = cleanTranscript(message.transcript)
      return {
        ...state,
        finals: text ? [...state.finals, text] : state.finals,
        interim: '',
      }
    }
    case 'warning':
      return {
        ...state,
        warning: { code: message.code, message: message.message, text: describeServerWarning(message) },
      }
    default:
      return state
  }
}

// Text assembly: used by the reducer's selectors and by the thread's draft.

/**
 * Server text as the UI keeps it: spaces and tabs trimmed at both ends and around
 * line breaks, but the line breaks themselves kept. With dictation on, a final can be
 * just "\n" ("new line") or start with "\n\n" ("new paragraph"); `trim()` would lose them.
 */
export function cleanTranscript(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[ \t]*\n[ \t]*/g, '\n').replace(/^[ \t]+|[ \t]+$/g, '')
}

/** Marks that attach to the word before: no space in front of them. */
const NO_SPACE_BEFORE = /^[\s.,!?;:%)\]}'’”…]/
/** Characters that attach to the word after: no space behind them. */
const OPENS = /[([{“‘¿¡]$/
/**
 * The text ends a sentence (possibly closed by quotes or brackets) or a line, perhaps
 * followed by spaces and an opening quote or bracket: what comes next starts a sentence.
 */
const SENTENCE_END = /(?:[.?!]["”’')\]]*|\n)[ \t]*["“‘([{]*$/
const ENDS_WITH_SPACE = /\s$/

const countQuotes = (text: string): number => text.split('"').length - 1

/**
 * Whether `"` at the end of `text` (or about to follow it) is inside an open quotation:
 * straight quotes alternate open, close, open…
 */
const insideQuote = (text: string): boolean => countQuotes(text) % 2 === 1

/**
 * `piece` with its first letter upper-cased. Letters after leading line breaks,
 * quotes or brackets count as first; a piece that starts with anything else (a digit,
 * a mark) is left alone. Never lower-cases.
 */
function capitalizeFirst(piece: string): string {
  const match = /^([\s"“‘'([{¿¡]*)(\p{Ll})/u.exec(piece)
  if (!match) return piece
  const [, lead, letter] = match
  return lead + letter.toLocaleUpperCase() + piece.slice(lead.length + letter.length)
}

/**
 * Join pieces of text (typed text, finals, the interim) as a person would write them.
 *
 * - Empty pieces are skipped; spaces and tabs at the start of later pieces are dropped.
 * - One space goes between words, except: after whitespace (a space or line break the
 *   text already has), before closing punctuation `, . ? ! : ; % ) ] } ' ’ ” …` or a line
 *   break, after an opening bracket or quote (`( [ { “ ‘`), and around straight quotes
 *   as they open and close (`say "hi" now`: a `"` closes when an odd number came before).
 * - A later piece that comes after a sentence end (`.`, `?`, `!`) or a line break gets
 *   its first letter upper-cased if it is lower-case (dictation commands such as
 *   "period" or "new line" arrive as separate finals).
 *
 * The first piece is never changed, so text the person typed stays as typed. Each
 * piece only depends on the text before it, so adding a piece only appends.
 */
export function joinText(...parts: readonly string[]): string {
  let out = ''
  for (const raw of parts) {
    if (!raw) continue
    if (!out) {
      out = raw
      continue
    }
    let piece = raw.replace(/^[ \t]+/, '')
    if (!piece) continue
    const lead = /^\s*/.exec(piece)![0]
    if (SENTENCE_END.test(out + lead)) piece = capitalizeFirst(piece)
    out += needsSpace(out, piece) ? ` ${piece}` : piece
  }
  return out
}

function needsSpace(before: string, piece: string): boolean {
  if (ENDS_WITH_SPACE.test(before) || NO_SPACE_BEFORE.test(piece) || OPENS.test(before)) return false
  // A straight quote that opened the quotation sticks to the word after it…
  if (before.endsWith('"') && insideQuote(before)) return false
  // …and one that closes it sticks to the word before.
  if (piece.startsWith('"') && insideQuote(before)) return false
  return true
}

/** Every final so far, joined. */
export const selectFinal = (state: SttState): string => joinText(...state.finals)
