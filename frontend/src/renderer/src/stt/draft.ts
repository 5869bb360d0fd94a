/**
 * Merging dictation into a text box the person can also type in (pure functions).
 *
 * Dictation edits like OS dictation: the text goes in at the caret, replacing the
 * selection. A `Draft` is the box split at the insertion point: `before` it, the
 * `selected` text the first dictated words replace, and `after` it. While dictating,
 * the box shows `draftView(draft, finals, interim).text`: `before`, then the finals
 * not yet folded into the draft, then the interim, joined by `joinText` (spacing around
 * punctuation and line breaks, capitals after a sentence end), then a space when the
 * text after the caret starts with a letter or digit, then `after`. The caret sits
 * right after the dictated finals (before the provisional interim), so the next final
 * follows them.
 *
 * When the person types (`editDraft`) or moves the caret (`moveCaret`), what they see,
 * minus the provisional interim, becomes the new `before` + `after`, split at their
 * caret: their typing is kept and the following finals (and the interim) go where the
 * caret now is.
 *
 * The finals are joined one by one after `before`, not pre-joined: how a final attaches
 * (a space or not, a capital or not, whether `"` opens or closes) depends on the text
 * before it, which includes what the person typed.
 */

import { joinText } from '@voxrelay/client'

export interface Draft {
  /** The person's text before the insertion point (with the finals folded in so far). */
  readonly before: string
  /** The selection the dictated text replaces (shown until the first dictated text). */
  readonly selected: string
  /** The person's text after the insertion point. */
  readonly after: string
  /** How many of the hook's finals are already inside `before`. */
  readonly consumed: number
}

/** What the box shows while dictating, and where the caret and the interim are in it. */
export interface DraftView {
  readonly text: string
  /** The selection to show: the caret after the dictated finals (or the selection still to replace). */
  readonly selectionStart: number
  readonly selectionEnd: number
  /** The interim as shown (with the space before it): `text.slice(interimStart, interimEnd)`. */
  readonly interimStart: number
  readonly interimEnd: number
}

const clamp = (n: number, low: number, high: number): number => Math.min(high, Math.max(low, n))

/** A draft for the text in the box, dictating at its selection (the end when none is given). */
export function startDraft(text: string, selectionStart = text.length, selectionEnd = selectionStart): Draft {
  const start = clamp(Math.min(selectionStart, selectionEnd), 0, text.length)
  const end = clamp(Math.max(selectionStart, selectionEnd), 0, text.length)
  return { before: text.slice(0, start), selected: text.slice(start, end), after: text.slice(end), consumed: 0 }
}

/** Characters after which a following word needs no space: whitespace and opening brackets/quotes. */
const OPENER = /[\s([{“‘¿¡]$/u
/** What the text after the caret must start with to get a space after the dictated text. */
const WORD_START = /^[\p{L}\p{N}([{“‘¿¡]/u

/**
 * The space between dictated text (`head`, which ends with it) and the person's text after the
 * caret: one when `after` starts with a letter, digit or opening bracket and `head` does not end
 * with whitespace, an opening bracket or an opening straight quote.
 */
function gapBefore(head: string, after: string): string {
  if (!head || !WORD_START.test(after) || OPENER.test(head)) return ''
  if (head.endsWith('"') && (head.split('"').length - 1) % 2 === 1) return ''
  return ' '
}

/** What the box shows: before + new finals + interim (joined) + a space if needed + after. */
export function draftView(draft: Draft, finals: readonly string[], interim: string): DraftView {
  const pieces = finals.slice(draft.consumed)
  const head = joinText(draft.before, ...pieces)
  const withInterim = joinText(head, interim)
  if (withInterim === draft.before) {
    // Nothing dictated yet: the selection is still there, to be replaced.
    const text = draft.before + draft.selected + draft.after
    const at = draft.before.length
    return { text, selectionStart: at, selectionEnd: at + draft.selected.length, interimStart: at, interimEnd: at }
  }
  const text = withInterim + gapBefore(withInterim, draft.after) + draft.after
  return {
    text,
    selectionStart: head.length,
    selectionEnd: head.length,
    interimStart: head.length,
    interimEnd: withInterim.length,
  }
}

/** What the box shows while dictating. */
export function draftText(draft: Draft, finals: readonly string[], interim: string): string {
  return draftView(draft, finals, interim).text
}

/**
 * `text` without `text.slice(start, end)` (the interim), and `caret` mapped into the result.
 * If taking the interim out glues two words together, a space is put back between them.
 */
function removeSpan(text: string, start: number, end: number, caret: number): { text: string; caret: number } {
  if (start >= end) return { text, caret }
  const left = text.slice(0, start)
  const right = text.slice(end)
  let mapped = caret <= start ? caret : caret >= end ? caret - (end - start) : start
  let glue = ''
  if (left && /[\p{L}\p{N}\p{M}]$/u.test(left) && /^[\p{L}\p{N}]/u.test(right)) {
    glue = ' '
    if (mapped > start) mapped += 1
  }
  return { text: left + glue + right, caret: mapped }
}

const commonPrefix = (a: string, b: string): number => {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

const commonSuffix = (a: string, b: string): number => {
  let i = 0
  while (i < a.length && i < b.length && a[a.length - 1 - i] === b[b.length - 1 - i]) i++
  return i
}

const split = (text: string, at: number, consumed: number): Draft => {
  const caret = clamp(at, 0, text.length)
  return { before: text.slice(0, caret), selected: '', after: text.slice(caret), consumed }
}

/**
 * The draft after the person changed the box to `value`, with the caret at `caret`
 * (the box's `selectionEnd` after the edit; without it, the insertion point stays
 * after the dictated text, shifted by edits before it).
 *
 * Everything shown except the interim becomes the person's text: the interim is
 * provisional (its final will follow, at the caret). If they edited the interim
 * itself, their version wins and is kept whole.
 */
export function editDraft(
  draft: Draft,
  finals: readonly string[],
  interim: string,
  value: string,
  caret?: number,
): Draft {
  const view = draftView(draft, finals, interim)
  const shown = view.text
  const consumed = finals.length
  const { interimStart: i0, interimEnd: i1 } = view

  // The edited span: shown[p, shown.length - s) became value[p, value.length - s), the smallest
  // such change. When repeated characters let it slide (typing a space next to a space), the
  // caret, which ends an insertion, says where it was.
  const prefix = commonPrefix(shown, value)
  const suffix = commonSuffix(shown, value)
  const total = prefix + Math.min(suffix, Math.min(shown.length, value.length) - prefix)
  let p = prefix
  if (caret !== undefined) {
    const anchored = caret - value.length + total
    if (anchored >= total - suffix && anchored <= prefix) p = anchored
  }
  const s = total - p
  const editEnd = shown.length - s
  const delta = value.length - shown.length
  // Without a caret, the person's caret is taken to be after the dictated text (and the interim).
  const at = caret ?? (editEnd <= i1 ? i1 + delta : i1)

  if (i0 === i1) return split(value, at, consumed)
  if (editEnd <= i0) {
    // Typed before the interim: it is still intact, shifted by the edit.
    const out = removeSpan(value, i0 + delta, i1 + delta, at)
    return split(out.text, out.caret, consumed)
  }
  if (p >= i1) {
    // Typed after the interim.
    const out = removeSpan(value, i0, i1, at)
    return split(out.text, out.caret, consumed)
  }
  // The person edited the interim itself: their version is theirs.
  return split(value, at, consumed)
}

/**
 * The draft after the person put the caret at `position` in the shown text (a click or
 * arrow keys, no edit): the following finals, and the interim, go there. The same draft
 * when the caret is where dictation would go anyway (or inside the interim).
 */
export function moveCaret(draft: Draft, finals: readonly string[], interim: string, position: number): Draft {
  const view = draftView(draft, finals, interim)
  const { interimStart: i0, interimEnd: i1 } = view
  const at = position > i0 && position < i1 ? i0 : clamp(position, 0, view.text.length)
  if (at === view.selectionStart && view.selectionStart === view.selectionEnd) return draft
  const out = removeSpan(view.text, i0, i1, at)
  return split(out.text, out.caret, finals.length)
}
