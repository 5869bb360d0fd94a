import { describe, expect, it } from 'vitest'
import { draftText, editDraft, startDraft } from './draft'

describe('draft', () => {
  it('keeps the text typed before dictation and appends finals and the interim', () => {
    const draft = startDraft('Note:')
    expect(draftText(draft, '', '')).toBe('Note:')
    expect(draftText(draft, '', 'buy')).toBe('Note: buy')
    expect(draftText(draft, 'Buy milk.', '')).toBe('Note: Buy milk.')
    expect(draftText(draft, 'Buy milk.', 'and eggs')).toBe('Note: Buy milk. and eggs')
  })

  it('starts empty without a leading space', () => {
    expect(draftText(startDraft(''), 'Hello.', 'how')).toBe('Hello. how')
  })

  it('does not double spaces or break a newline the person typed', () => {
    expect(draftText(startDraft('List: '), 'one', '')).toBe('List: one')
    expect(draftText(startDraft('List:\n'), 'one', '')).toBe('List:\none')
  })

  it('folds an edit into the base and appends later finals after it', () => {
    let draft = startDraft('Hi')
    // Shown: "Hi Hello world." ; the person adds " Bob" at the end.
    draft = editDraft(draft, 'Hello world.', '', 'Hi Hello world. Bob')
    expect(draft).toEqual({ base: 'Hi Hello world. Bob', consumed: 'Hello world.'.length })
    expect(draftText(draft, 'Hello world. Next one.', '')).toBe('Hi Hello world. Bob Next one.')
  })

  it('takes the interim out of the base when it is intact at the end', () => {
    let draft = startDraft('Hi')
    const shown = draftText(draft, 'Hello.', 'how are')
    expect(shown).toBe('Hi Hello. how are')
    // The person edits the committed part: "Hi" -> "Hey".
    draft = editDraft(draft, 'Hello.', 'how are', 'Hey Hello. how are')
    expect(draft.base).toBe('Hey Hello.')
    // The final for the interim replaces it; nothing is duplicated.
    expect(draftText(draft, 'Hello. How are you?', '')).toBe('Hey Hello. How are you?')
  })

  it('keeps typing after the interim and drops only the provisional words', () => {
    let draft = startDraft('')
    draft = editDraft(draft, '', 'send it', 'send it now!')
    expect(draft.base).toBe(' now!')
    expect(draftText(draft, 'Send it.', '')).toBe(' now! Send it.')
  })

  it("keeps the person's version when they edit the interim itself", () => {
    let draft = startDraft('A')
    draft = editDraft(draft, '', 'teh cat', 'A the cat')
    expect(draft.base).toBe('A the cat')
  })

  it('never loses typed text: every edit is in the next shown text', () => {
    let draft = startDraft('start')
    let final = ''
    const steps: [string, string, string][] = [
      ['one', '', 'start one!'],
      ['one', 'two', 'start one! typed two'],
      ['one two three', 'four', 'start one! typed two three four more'],
    ]
    for (const [newFinal, interim, value] of steps) {
      final = newFinal
      draft = editDraft(draft, final, interim, value)
      const typed = value.split(' ').filter((w) => ['start', 'one!', 'typed', 'more'].includes(w))
      for (const word of typed) expect(draftText(draft, final, interim)).toContain(word)
    }
  })
})
