/**
 * Merging dictation into a text box the person can also type in (pure functions).
 *
 * While dictating, the box shows `draftText(draft, finals, interim)`: the text
 * before dictation (`base`), then the finals not yet folded into it, then the
 * current interim, joined by `joinText` (spacing around punctuation and line
 * breaks, capitals after a sentence end). When the person edits the box,
 * `editDraft` folds what they see (minus the provisional interim) into a new base,
 * so their typing is kept and later finals are appended after it.
 *
 * The finals are joined here one by one after the base, not pre-joined: how a
 * final attaches (a space or not, a capital or not, whether `"` opens or closes)
 * depends on the text before it, which includes what the person typed.
 */

import { joinText } from '@voxrelay/client'

export interface Draft {
  /** Text that is the person's: what was there before dictation, plus any edits. */
  readonly base: string
  /** How many of the hook's finals are already inside `base`. */
  readonly consumed: number
}

/** A draft starting from the text already in the box. */
export const startDraft = (text: string): Draft => ({ base: text, consumed: 0 })

/** What the box shows: base + new finals + interim, with correct spacing. */
export function draftText(draft: Draft, finals: readonly string[], interim: string): string {
  return joinText(draft.base, ...finals.slice(draft.consumed), interim)
}

/**
 * The draft after the person changed the box to `value`.
 *
 * The interim is provisional (its final will follow), so it is taken out of the
 * new base when it is still intact at the end or the person typed after it. If
 * they edited the interim itself, their version wins and is kept whole.
 */
export function editDraft(draft: Draft, finals: readonly string[], interim: string, value: string): Draft {
  const consumed = finals.length
  const withoutInterim = draftText(draft, finals, '')
  const shown = draftText(draft, finals, interim)
  // `joinText` only appends, so the interim is what `shown` has past `withoutInterim`:
  // a space (or nothing), then the interim as displayed (perhaps capitalized).
  const tail = shown.slice(withoutInterim.length)
  const interimText = tail.replace(/^ /, '')
  if (!interimText) return { base: value, consumed }
  const gap = tail.slice(0, tail.length - interimText.length)

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
