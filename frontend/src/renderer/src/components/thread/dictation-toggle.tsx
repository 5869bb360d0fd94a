/**
 * The "Spoken punctuation" switch under the composer: a labelled checkbox with
 * `role="switch"` and a hint naming a few commands. It only renders; the setting
 * lives in `useDictationSetting` and reaches the gateway through `useSpeechToText`.
 */

import { useId } from 'react'

export interface DictationToggleProps {
  enabled: boolean
  onChange: (enabled: boolean) => void
  /** The setting was changed during a dictation: it applies from the next one, and the hint says so. */
  pending?: boolean
}

export function DictationToggle({ enabled, onChange, pending = false }: DictationToggleProps): React.JSX.Element {
  const id = useId()
  const hintId = useId()
  return (
    <div className="thread-option">
      <input
        id={id}
        type="checkbox"
        role="switch"
        className="thread-switch"
        checked={enabled}
        aria-checked={enabled}
        aria-describedby={hintId}
        onChange={(event) => onChange(event.target.checked)}
      />
      <label htmlFor={id}>Spoken punctuation</label>
      <span id={hintId} className="thread-hint">
        Say &ldquo;comma&rdquo;, &ldquo;period&rdquo;, &ldquo;question mark&rdquo;, &ldquo;new line&rdquo; or &ldquo;new
        paragraph&rdquo; to type them.
        {pending && ' Applies from the next dictation.'}
      </span>
    </div>
  )
}
