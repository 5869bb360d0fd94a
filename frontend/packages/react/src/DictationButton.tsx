/**
 * `DictationButton`: one button that starts and stops a `useSpeechToText` dictation.
 *
 * Accessible by default: a native `<button type="button">` (keyboard and focus for
 * free) whose name follows the state ("Start dictation", "Cancel dictation" while
 * connecting, "Stop dictation" while recording, "Finishing dictation" while the last
 * words arrive), `aria-pressed` while recording and `aria-busy` while connecting or
 * finishing. `data-state` (idle | connecting | recording | error) and `data-status`
 * (the hook's precise status) are there for styling and tests. The default content
 * is the name as text plus an input-level bar (`data-level`, 0..1); pass children
 * (or a function of the state) to draw your own.
 *
 * With `shortcut`, Ctrl+Shift+Space (Cmd+Shift+Space on Apple platforms) anywhere in the
 * page presses it: the key is listened to on the window, focus stays where it is (in the
 * message box, say), and the button carries `aria-keyshortcuts` and the shortcut in its
 * title. The button's name stays the plain action.
 */

import { useEffect, useRef, type ButtonHTMLAttributes, type ReactNode } from 'react'
import { isFailure, type SttStatus } from '@voxrelay/client'
import { dictationShortcut, isDictationShortcut } from './shortcut'
import type { SpeechToText } from './useSpeechToText'

/** The button's coarse state: `connecting` also covers `stopping`; every failure is `error`. */
export type DictationButtonState = 'idle' | 'connecting' | 'recording' | 'error'

export function dictationButtonState(status: SttStatus): DictationButtonState {
  if (status === 'recording') return 'recording'
  if (status === 'connecting' || status === 'stopping') return 'connecting'
  return isFailure(status) ? 'error' : 'idle'
}

/** What pressing the button would do, as its accessible name. */
export function dictationLabel(status: SttStatus): string {
  switch (status) {
    case 'connecting':
      return 'Cancel dictation'
    case 'recording':
      return 'Stop dictation'
    case 'stopping':
      return 'Finishing dictation'
    default:
      return 'Start dictation'
  }
}

export interface DictationButtonProps
  extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick' | 'children' | 'type'> {
  /** What `useSpeechToText` returned. */
  stt: Pick<SpeechToText, 'status' | 'level' | 'start' | 'stop'>
  /** Called just before a dictation starts (e.g. to remember where the text goes). */
  onStart?: () => void
  /** Called just before a dictation is stopped or cancelled. */
  onStop?: () => void
  /** Ctrl+Shift+Space (Cmd+Shift+Space on Apple platforms) anywhere in the page presses the button. */
  shortcut?: boolean
  children?: ReactNode | ((state: { state: DictationButtonState; status: SttStatus; level: number; label: string }) => ReactNode)
}

export function DictationButton({
  stt,
  onStart,
  onStop,
  shortcut = false,
  children,
  disabled,
  title,
  ...rest
}: DictationButtonProps): ReactNode {
  const { status, level } = stt
  const state = dictationButtonState(status)
  const label = dictationLabel(status)
  const keys = shortcut ? dictationShortcut() : null
  const toggle = (): void => {
    if (disabled && status !== 'recording' && status !== 'connecting') return
    if (status === 'recording' || status === 'connecting') {
      onStop?.()
      void stt.stop()
    } else if (status !== 'stopping') {
      onStart?.()
      void stt.start()
    }
  }
  // The window listener calls the latest toggle (it closes over this render's status).
  const toggleRef = useRef(toggle)
  useEffect(() => {
    toggleRef.current = toggle
  })
  useEffect(() => {
    if (!shortcut) return
    const onKeyDown = (event: KeyboardEvent): void => {
      if (!isDictationShortcut(event)) return
      event.preventDefault()
      if (!event.repeat) toggleRef.current()
    }
    window.addEventListener('keydown', onKeyDown, true)
    return () => window.removeEventListener('keydown', onKeyDown, true)
  }, [shortcut])
  const content =
    typeof children === 'function' ? (
      children({ state, status, level, label })
    ) : children !== undefined ? (
      children
    ) : (
      <>
        <span>{label}</span>{' '}
        <span
          aria-hidden="true"
          data-level={level.toFixed(3)}
          style={{
            display: 'inline-block',
            width: '2em',
            height: '0.3em',
            background: 'currentColor',
            transformOrigin: 'left',
            transform: `scaleX(${Math.min(1, level * 4).toFixed(3)})`,
          }}
        />
      </>
    )
  return (
    <button
      type="button"
      aria-label={label}
      aria-pressed={status === 'recording'}
      aria-busy={state === 'connecting' || undefined}
      title={keys ? `${title ?? label} (${keys.label})` : (title ?? label)}
      aria-keyshortcuts={keys?.aria}
      data-state={state}
      data-status={status}
      {...rest}
      disabled={disabled || status === 'stopping'}
      onClick={toggle}
    >
      {content}
    </button>
  )
}
