/**
 * Merging dictation into a text box the person can also type in (pure functions).
 *
 * While dictating, the box shows `draftText(draft, final, interim)`:
 * the text before dictation (`base`), then the finals not yet folded into it, then
 * the current interim. When the person edits the box, `editDraft` folds what they
 * see (minus the provisional interim) into a new base, so their typing is kept and
 * later finals are appended after it.
 */

import { joinText } from './reducer'

export interface Draft {
  /** Text that is the person's: what was there before dictation, plus any edits. */
  readonly base: string
  /** How many characters of the hook's `final` string are already inside `base`. */
  readonly consumed: number
}

/** A draft starting from the text already in the box. */
export const startDraft = (text: string): Draft => ({ base: text, consumed: 0 })

/** The finals that arrived after the draft's last fold. */
const freshFinal = (draft: Draft, final: string): string => final.slice(draft.consumed)

/** What the box shows: base + new finals + interim, with correct spacing. */
export function draftText(draft: Draft, final: string, interim: string): string {
  return joinText(draft.base, freshFinal(draft, final), interim)
}

/**
 * The draft after the person changed the box to `value`.
 *
 * The interim is provisional (its final will follow), so it is taken out of the
 * new base when it is still intact at the end or the person typed after it. If
 * they edited the interim itself, their version wins and is kept whole.
 */
export function editDraft(draft: Draft, final: string, interim: string, value: string): Draft {
  const consumed = final.length
  const interimText = interim.trim()
  if (!interimText) return { base: value, consumed }

  const withoutInterim = draftText(draft, final, '')
  const shown = draftText(draft, final, interimText)
  const interimStart = shown.length - interimText.length
  // Characters between the committed text and the interim (a space, or nothing).
  const gap = shown.slice(withoutInterim.length, interimStart)

  if (value.endsWith(interimText)) {
    const before = value.slice(0, value.length - interimText.length)
    return { base: before.endsWith(gap) ? before.slice(0, before.length - gap.length) : before, consumed }
  }
  if (value.startsWith(shown)) {
    // Typed after the interim: keep the typing, drop the provisional words before it.
    return { base: withoutInterim + value.slice(shown.length), consumed }
  }
  return { base: value, consumed }
}
