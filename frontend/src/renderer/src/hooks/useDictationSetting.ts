/**
 * `useDictationSetting`: the "Spoken punctuation" setting, kept in `localStorage`
 * (`voxrelay.dictation`, "on" or "off") so it survives reloads and restarts, in the
 * web UI and in the Electron renderer alike. Off until the person turns it on.
 * Other tabs of the same origin follow a change (the `storage` event).
 *
 * The value is only read by `useSpeechToText` when a dictation starts, so changing
 * it during a dictation applies from the next one.
 */

import { useCallback, useEffect, useState } from 'react'

export const DICTATION_STORAGE_ITEM = 'voxrelay.dictation'

function storageOrNull(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    // Storage disabled (some privacy settings throw on access).
    return null
  }
}

function readSetting(storage: Storage | null): boolean {
  try {
    return storage?.getItem(DICTATION_STORAGE_ITEM) === 'on'
  } catch {
    return false
  }
}

/** `[enabled, setEnabled]`; `storage` null keeps the setting for this page only. */
export function useDictationSetting(
  storage: Storage | null = storageOrNull(),
): [boolean, (enabled: boolean) => void] {
  const [enabled, setState] = useState(() => readSetting(storage))

  useEffect(() => {
    const onStorage = (event: StorageEvent): void => {
      if (event.key === DICTATION_STORAGE_ITEM || event.key === null) setState(readSetting(storage))
    }
    window.addEventListener('storage', onStorage)
    return () => window.removeEventListener('storage', onStorage)
  }, [storage])

  const setEnabled = useCallback(
    (next: boolean) => {
      setState(next)
      try {
        storage?.setItem(DICTATION_STORAGE_ITEM, next ? 'on' : 'off')
      } catch {
        // Full or disabled storage: the setting still holds for this page.
      }
    },
    [storage],
  )

  return [enabled, setEnabled]
}
