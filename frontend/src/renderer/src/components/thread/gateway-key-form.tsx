/**
 * The "Gateway key" form: shown in the thread when the gateway needs a key and this
 * tab has none (or the last one was refused). The key goes to `GatewayKeyAuth`, which
 * keeps it in this tab's sessionStorage and mints a token per dictation; it is never
 * put in a URL or shown again.
 */

import { useId, useState, useSyncExternalStore, type FormEvent } from 'react'
import type { GatewayKeyAuth } from '@voxrelay/client'
import { Button } from '../ui/button'

export type KeyPrompt = Pick<GatewayKeyAuth, 'subscribe' | 'getSnapshot' | 'submitKey' | 'cancel'>

export function GatewayKeyForm({ prompt }: { prompt: KeyPrompt }): React.JSX.Element | null {
  const state = useSyncExternalStore(prompt.subscribe, prompt.getSnapshot)
  const [key, setKey] = useState('')
  const inputId = useId()
  const hintId = useId()

  if (!state.asking) return null

  const onSubmit = (event: FormEvent): void => {
    event.preventDefault()
    if (!key.trim()) return
    prompt.submitKey(key)
    setKey('')
  }

  return (
    <form className="thread-key" aria-label="Gateway access" onSubmit={onSubmit}>
      <p id={hintId} className="thread-hint">
        {state.refused
          ? 'That key was refused. Enter the gateway key again.'
          : 'This speech gateway needs a key for dictation. It is kept in this tab only.'}
      </p>
      <div className="thread-key-row">
        <label htmlFor={inputId}>Gateway key</label>
        <input
          id={inputId}
          className="thread-key-input"
          type="password"
          name="gateway-key"
          autoComplete="off"
          spellCheck={false}
          aria-describedby={hintId}
          value={key}
          onChange={(event) => setKey(event.target.value)}
        />
        <Button type="submit" variant="primary" disabled={!key.trim()}>
          Use key
        </Button>
        <Button type="button" onClick={() => prompt.cancel()}>
          Cancel
        </Button>
      </div>
    </form>
  )
}
