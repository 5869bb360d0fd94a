/**
 * The chat thread: message list, a "Message" textarea, a send button and the mic
 * button for live dictation.
 *
 * Dictation state comes from `useSpeechToText` and the mic is `DictationButton`, both
 * from `@voxrelay/react`; this component only maps the state to
 * `isRecording` / `sttError` / `input` and merges the transcript into the textarea
 * with the pure draft functions, like OS dictation: the text goes in at the caret
 * (replacing a selection), the caret follows it, clicking or arrowing elsewhere during
 * a dictation moves where the next words go, and text typed before and during
 * dictation is kept.
 *
 * Ctrl+Shift+Space (Cmd+Shift+Space on macOS) starts and stops dictation from anywhere
 * in the page, focus staying in the message box. While recording, a "Microphone level"
 * meter (role="meter") shows the input level; a polite status line (role="status")
 * announces "Dictation started." / "Dictation stopped." and shows server warnings
 * (e.g. the gateway is draining); errors are in role="alert".
 *
 * Mic button contract (for people and tests): aria-label "Start dictation" when
 * idle (or after an error), "Stop dictation" while recording, "Cancel dictation"
 * while connecting, "Finishing dictation" while the last words arrive; `data-state`
 * is idle | connecting | recording | error (connecting also covers finishing);
 * `data-status` is the hook's precise status. Errors appear in role="alert".
 * With `keyPrompt` (web build, auth on) the "Gateway key" form appears above the
 * composer while a key is needed.
 *
 * Under the composer, the "Spoken punctuation" switch (role="switch", persisted by
 * `useDictationSetting`) makes the next dictation send `dictation: true`, so the
 * gateway writes "comma", "new line"… as marks; the draft joins those finals without
 * stray spaces and keeps their line breaks.
 */

import { LoaderCircle, Mic, MicOff, SendHorizontal } from 'lucide-react'
import {
  useCallback,
  useEffect,
  useId,
  useLayoutEffect,
  useRef,
  useState,
  type FormEvent,
  type KeyboardEvent,
} from 'react'
import { useDictationSetting } from '../../hooks/useDictationSetting'
import { isFailure, type CaptureMode, type MediaEnvironment, type StreamOptions, type TokenProvider } from '@voxrelay/client'
import {
  DictationButton,
  DictationLevelMeter,
  DictationStatus,
  dictationButtonState,
  dictationLabel,
  dictationShortcut,
  useSpeechToText,
} from '@voxrelay/react'
import { draftView, editDraft, moveCaret, startDraft, type Draft, type DraftView } from '../../stt/draft'
import { Button } from '../ui/button'
import { DictationToggle } from './dictation-toggle'
import { GatewayKeyForm, type KeyPrompt } from './gateway-key-form'

export interface ThreadMessage {
  id: string
  role: 'user' | 'assistant'
  text: string
}

export interface ThreadProps {
  /** The gateway's `ws(s)://…/stt-stream`. */
  sttUrl: string
  /** From the gateway's health check: false disables the mic; null while unknown. */
  sttAvailable?: boolean | null
  /** Why STT is unavailable (shown as the mic button's title). */
  sttUnavailableReason?: string | null
  audioMode?: CaptureMode
  streamOptions?: StreamOptions
  /**
   * Runs when a message is sent, while the thread shows `isLoading`. The thread
   * itself appends the person's message; a returned string is appended as the
   * reply; a thrown error is shown in an alert. Default: nothing more to do.
   */
  onSubmit?: (text: string) => Promise<string | void> | string | void
  /** Called with the message when a dictation fails (e.g. to re-check the gateway's health). */
  onSttError?: (message: string) => void
  initialMessages?: ThreadMessage[]
  /** Browser media APIs for the hook (tests). */
  sttEnvironment?: () => MediaEnvironment
  /** A fresh connection token per dictation (gateways with auth on). */
  tokenProvider?: TokenProvider
  /** Web build: where the "Gateway key" form gets its state and sends the key. */
  keyPrompt?: KeyPrompt
}

const SHORTCUT = dictationShortcut()

/**
 * Where `position` in the last view is in the new one, for the same draft (only the dictated
 * words between the insertion point and the text after it changed): before the insertion point
 * it stays, in the text after it it moves with that text, inside the dictated words it goes to
 * the insertion point.
 */
function carryOver(position: number, last: DraftView, next: DraftView, draft: Draft): number {
  if (position <= last.selectionStart) return position
  const fromEnd = last.text.length - position
  if (fromEnd <= draft.after.length) return next.text.length - fromEnd
  return next.selectionStart
}

let nextId = 0
const newId = (): string => `m${Date.now().toString(36)}-${(nextId++).toString(36)}`

export function Thread({
  sttUrl,
  sttAvailable = true,
  sttUnavailableReason = null,
  audioMode = 'linear16',
  streamOptions,
  onSubmit,
  onSttError,
  initialMessages = [],
  sttEnvironment,
  tokenProvider,
  keyPrompt,
}: ThreadProps): React.JSX.Element {
  const [messages, setMessages] = useState<ThreadMessage[]>(initialMessages)
  const [input, setInput] = useState('')
  const [draft, setDraft] = useState<Draft | null>(null)
  const [isLoading, setIsLoading] = useState(false)
  const [submitError, setSubmitError] = useState<string | null>(null)
  const listRef = useRef<HTMLOListElement>(null)
  const inputRef = useRef<HTMLTextAreaElement>(null)
  const inputId = useId()
  const [dictation, setDictation] = useDictationSetting()
  // The setting the running dictation started with (the hook reads it at start).
  const [runDictation, setRunDictation] = useState(dictation)

  const stt = useSpeechToText({
    url: sttUrl,
    mode: audioMode,
    stream: streamOptions,
    dictation,
    environment: sttEnvironment,
    tokenProvider,
  })
  const { status, finals, interim, error: sttError, level } = stt
  const isRecording = status === 'recording'
  const dictating = stt.isActive

  // What the textarea shows: the draft while dictating, the plain input otherwise.
  const view = draft ? draftView(draft, finals, interim) : null
  const shown = view ? view.text : input
  // Where the caret goes once a dictation's text becomes the input (after its last words).
  const caretAfterDictation = useRef<number | null>(null)

  // When a dictation ends (normally or not), its text becomes the input. The interim
  // is included: after a normal stop it is empty; after a failure it is all there is.
  useEffect(() => {
    if (!dictating && draft) {
      const last = draftView(draft, finals, interim)
      caretAfterDictation.current = last.interimEnd
      setInput(last.text)
      setDraft(null)
    }
  }, [dictating, draft, finals, interim])

  // A selection the person made in the box during a dictation (to copy, say), and the text it was in.
  const personSelection = useRef<{ start: number; end: number; text: string } | null>(null)
  // The draft and view of the last render, to carry that selection over new words.
  const previous = useRef<{ draft: Draft; view: DraftView } | null>(null)

  // The caret follows the dictated text (React resets it to the end when it sets the value);
  // a selection the person made meanwhile stays on the same text instead.
  const selectionStart = view?.selectionStart
  const selectionEnd = view?.selectionEnd
  useLayoutEffect(() => {
    const box = inputRef.current
    const last = previous.current
    previous.current = draft && view ? { draft, view } : null
    if (!box) return
    let range: [number, number] | null = null
    const kept = personSelection.current
    if (draft && view && kept && last && last.draft === draft && kept.text === last.view.text && document.activeElement === box) {
      range = [carryOver(kept.start, last.view, view, draft), carryOver(kept.end, last.view, view, draft)]
      personSelection.current = { start: range[0], end: range[1], text: view.text }
    } else if (selectionStart !== undefined && selectionEnd !== undefined) {
      range = [selectionStart, selectionEnd]
    } else if (caretAfterDictation.current !== null) {
      range = [caretAfterDictation.current, caretAfterDictation.current]
    }
    caretAfterDictation.current = null
    if (range && (box.selectionStart !== range[0] || box.selectionEnd !== range[1])) {
      box.setSelectionRange(range[0], range[1])
    }
    // Only when the text or the insertion point changed: other renders (the level, ~10 a second)
    // must not undo a caret or selection the person is making with the mouse or keys.
  }, [shown, selectionStart, selectionEnd])

  // Dictating at the end: keep the end in view while the box scrolls.
  useEffect(() => {
    const box = inputRef.current
    if (draft && !draft.after && box) box.scrollTop = box.scrollHeight
  }, [draft, shown])

  useEffect(() => {
    if (isFailure(status) && sttError) onSttError?.(sttError)
  }, [status, sttError, onSttError])

  useEffect(() => {
    const list = listRef.current
    if (list) list.scrollTop = list.scrollHeight
  }, [messages])

  const onInputChange = (value: string, caret: number): void => {
    if (draft) setDraft(editDraft(draft, finals, interim, value, caret))
    else setInput(value)
  }

  // A click or arrow key during a dictation (no edit): the next words go to the new caret.
  // A selection made meanwhile is left alone (to copy, say) and kept across new words; only
  // a plain caret moves them.
  const onCaretMaybeMoved = (): void => {
    const box = inputRef.current
    if (!draft || !view || !box || box.value !== shown) return
    const { selectionStart: start, selectionEnd: end } = box
    if (start !== end) {
      const own = start === view.selectionStart && end === view.selectionEnd
      personSelection.current = own ? null : { start, end, text: shown }
      return
    }
    personSelection.current = null
    const next = moveCaret(draft, finals, interim, start)
    if (next !== draft) setDraft(next)
  }

  // The mic button (DictationButton, or its shortcut) starts and stops the hook; this notes
  // where the text goes: the message box's caret or selection.
  const onDictationStart = useCallback(() => {
    const box = inputRef.current
    setDraft(box ? startDraft(input, box.selectionStart, box.selectionEnd) : startDraft(input))
    setRunDictation(dictation)
  }, [input, dictation])

  const submit = async (): Promise<void> => {
    const text = shown.trim()
    if (!text || isLoading || dictating) return
    setIsLoading(true)
    setSubmitError(null)
    setMessages((list) => [...list, { id: newId(), role: 'user', text }])
    setInput('')
    stt.reset()
    try {
      const reply = await onSubmit?.(text)
      if (typeof reply === 'string' && reply.trim()) {
        setMessages((list) => [...list, { id: newId(), role: 'assistant', text: reply }])
      }
    } catch (error) {
      setSubmitError(`Could not send the message: ${error instanceof Error ? error.message : String(error)}`)
    } finally {
      setIsLoading(false)
    }
  }

  const onFormSubmit = (event: FormEvent): void => {
    event.preventDefault()
    void submit()
  }

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault()
      void submit()
    }
  }

  const state = dictationButtonState(status)
  const unavailable = sttAvailable !== true
  const micDisabled = status === 'stopping' || (!dictating && (unavailable || isLoading))
  const micTitle =
    !dictating && sttAvailable === false
      ? `Dictation is unavailable: ${sttUnavailableReason ?? 'the speech gateway is not ready'}`
      : !dictating && sttAvailable == null
        ? 'Checking the speech gateway…'
        : dictationLabel(status)
  const MicIcon = state === 'connecting' ? LoaderCircle : isRecording ? MicOff : Mic

  return (
    <section className="thread" aria-label="Thread">
      <ol className="thread-messages" ref={listRef} role="log" aria-live="polite" aria-label="Messages">
        {messages.length === 0 ? (
          <li className="thread-empty">No messages yet. Type, or press the microphone ({SHORTCUT.label}) and speak.</li>
        ) : (
          messages.map((message) => (
            <li key={message.id} className={`thread-message thread-message-${message.role}`}>
              {message.text}
            </li>
          ))
        )}
      </ol>

      {sttError && (
        <div role="alert" className="thread-error" data-testid="stt-error">
          {sttError}
        </div>
      )}
      {submitError && (
        <div role="alert" className="thread-error" data-testid="submit-error">
          {submitError}
        </div>
      )}

      {keyPrompt && <GatewayKeyForm prompt={keyPrompt} />}

      <form className="thread-composer" onSubmit={onFormSubmit} aria-busy={isLoading}>
        <label htmlFor={inputId} className="visually-hidden">
          Message
        </label>
        <textarea
          id={inputId}
          ref={inputRef}
          aria-label="Message"
          className="thread-input"
          rows={3}
          placeholder={isRecording ? 'Listening…' : 'Type a message, or dictate with the microphone'}
          value={shown}
          onChange={(event) => onInputChange(event.target.value, event.target.selectionEnd)}
          onKeyDown={onKeyDown}
          onKeyUp={onCaretMaybeMoved}
          onMouseUp={onCaretMaybeMoved}
          data-interim={interim || undefined}
        />
        <div className="thread-actions">
          <DictationButton
            stt={stt}
            onStart={onDictationStart}
            className={`btn btn-${state === 'recording' || state === 'error' ? 'danger' : 'ghost'} mic mic-${state}`}
            title={micTitle}
            disabled={micDisabled}
            shortcut={!micDisabled}
          >
            <MicIcon aria-hidden="true" className={state === 'connecting' ? 'spin' : undefined} size={20} />
          </DictationButton>
          <DictationLevelMeter level={level} className="mic-meter" barClassName="mic-meter-bar" hidden={!isRecording} />
          <Button
            type="submit"
            variant="primary"
            aria-label="Send message"
            title={dictating ? 'Stop dictation to send' : 'Send message'}
            disabled={isLoading || dictating || !shown.trim()}
          >
            {isLoading ? (
              <LoaderCircle aria-hidden="true" className="spin" size={20} />
            ) : (
              <SendHorizontal aria-hidden="true" size={20} />
            )}
          </Button>
        </div>
      </form>
      <DictationStatus stt={stt} showError={false} className="thread-hint thread-status" />
      <DictationToggle enabled={dictation} onChange={setDictation} pending={dictating && dictation !== runDictation} />
      {!dictating && sttAvailable === false && (
        <p className="thread-hint" role="status">
          Dictation is unavailable: {sttUnavailableReason ?? 'the speech gateway is not ready'}.
        </p>
      )}
    </section>
  )
}

export default Thread
