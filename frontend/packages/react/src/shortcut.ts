/**
 * The keyboard shortcut that starts and stops dictation: Ctrl+Shift+Space, or
 * Cmd+Shift+Space on Apple platforms.
 *
 * Chosen because neither browsers (Chrome, Firefox, Safari) nor Electron's default menus
 * bind it, it types nothing, and it is reachable with one hand. (Ctrl+Space and Cmd+Space
 * switch input sources or open Spotlight; Ctrl+Cmd+Space is macOS's character viewer.)
 */

export interface DictationShortcut {
  /** For `aria-keyshortcuts`: `Control+Shift+Space` or `Meta+Shift+Space`. */
  readonly aria: string
  /** For people (a button's title, docs): `Ctrl+Shift+Space` or `⌘⇧Space`. */
  readonly label: string
  readonly mac: boolean
}

/** Whether this runs on macOS/iOS (the shortcut uses Cmd there). */
export function isApplePlatform(nav: Pick<Navigator, 'platform' | 'userAgent'> | undefined = globalThis.navigator): boolean {
  if (!nav) return false
  return /Mac|iPhone|iPad|iPod/i.test(nav.platform || nav.userAgent || '')
}

export function dictationShortcut(mac: boolean = isApplePlatform()): DictationShortcut {
  return mac
    ? { aria: 'Meta+Shift+Space', label: '⌘⇧Space', mac }
    : { aria: 'Control+Shift+Space', label: 'Ctrl+Shift+Space', mac }
}

type KeyLike = Pick<KeyboardEvent, 'key' | 'code' | 'ctrlKey' | 'metaKey' | 'shiftKey' | 'altKey'>

/** Whether a keydown is the dictation shortcut (on this platform). */
export function isDictationShortcut(event: KeyLike, mac: boolean = isApplePlatform()): boolean {
  const space = event.code === 'Space' || event.key === ' ' || event.key === 'Spacebar'
  if (!space || !event.shiftKey || event.altKey) return false
  return mac ? event.metaKey && !event.ctrlKey : event.ctrlKey && !event.metaKey
}
