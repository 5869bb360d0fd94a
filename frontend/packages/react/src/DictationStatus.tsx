/**
 * `DictationStatus`: what screen readers (and, as a small status line, everyone) are told
 * about a dictation.
 *
 * A polite live region (`role="status"`), always rendered so that changes are announced:
 * "Dictation started." once recording, "Dictation stopped." when a run ends normally, and
 * the server's `warning` (e.g. the server is draining) as a sentence. Errors go to a
 * separate `role="alert"` (assertive) unless `showError` is false (when the app shows
 * `error` itself). `data-warning` carries the warning's code, for styling and tests.
 */

import { useEffect, useRef, useState, type HTMLAttributes, type ReactNode } from 'react'
import { isActive, isFailure } from '@voxrelay/client'
import type { SpeechToText } from './useSpeechToText'

export interface DictationStatusProps extends Omit<HTMLAttributes<HTMLDivElement>, 'role' | 'children'> {
  stt: Pick<SpeechToText, 'status' | 'error' | 'warning'>
  /** Render `error` in a `role="alert"` too (default true). */
  showError?: boolean
  /** The sentences announced at start and stop. */
  startedText?: string
  stoppedText?: string
}

export function DictationStatus({
  stt,
  showError = true,
  startedText = 'Dictation started.',
  stoppedText = 'Dictation stopped.',
  ...rest
}: DictationStatusProps): ReactNode {
  const { status, error, warning } = stt
  const [announcement, setAnnouncement] = useState('')
  const previous = useRef(status)

  useEffect(() => {
    const before = previous.current
    previous.current = status
    if (status === before) return
    if (status === 'recording') setAnnouncement(startedText)
    else if (status === 'idle' && isActive(before)) setAnnouncement(stoppedText)
    // A failure is announced by the alert; a stale "started" must not stay.
    else if (isFailure(status)) setAnnouncement('')
  }, [status, startedText, stoppedText])

  return (
    <>
      <div role="status" aria-live="polite" aria-atomic="true" data-warning={warning?.code || undefined} {...rest}>
        {announcement}
        {announcement && warning ? ' ' : null}
        {warning ? warning.text : null}
      </div>
      {showError && error ? <div role="alert">{error}</div> : null}
    </>
  )
}
