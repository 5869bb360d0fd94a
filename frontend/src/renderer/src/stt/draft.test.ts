import { describe, expect, it } from 'vitest'
import { draftText, editDraft, startDraft } from './draft'

describe('draft', () => {
  it('keeps the text typed before dictation and appends finals and the interim', () => {
    const draft = startDraft('Note:')
    expect(draftText(draft, [], '')).toBe('Note:')
    expect(draftText(draft, [], 'buy')).toBe('Note: buy')
    expect(draftText(draft, ['Buy milk.'], '')).toBe('Note: Buy milk.')
    // The interim follows the same rules as a final: a capital after the sentence end.
    expect(draftText(draft, ['Buy milk.'], 'and eggs')).toBe('Note: Buy milk. And eggs')
  })

  it('starts empty without a leading space', () => {
    expect(draftText(startDraft(''), ['Hello.'], 'how')).toBe('Hello. How')
  })

  it('does not double spaces or break a newline the person typed', () => {
    expect(draftText(startDraft('List: '), ['one'], '')).toBe('List: one')
    // A new line starts with a capital, like a new sentence.
    expect(draftText(startDraft('List:\n'), ['one'], '')).toBe('List:\nOne')
  })

  it('folds an edit into the base and appends later finals after it', () => {
    let draft = startDraft('Hi')
    // Shown: "Hi Hello world." ; the person adds " Bob" at the end.
    draft = editDraft(draft, ['Hello world.'], '', 'Hi Hello world. Bob')
    expect(draft).toEqual({ base: 'Hi Hello world. Bob', consumed: 1 })
    expect(draftText(draft, ['Hello world.', 'Next one.'], '')).toBe('Hi Hello world. Bob Next one.')
  })

  it('takes the interim out of the base when it is intact at the end', () => {
    let draft = startDraft('Hi')
    const shown = draftText(draft, ['Hello.'], 'how are')
    expect(shown).toBe('Hi Hello. How are')
    // The person edits the committed part: "Hi" -> "Hey".
    draft = editDraft(draft, ['Hello.'], 'how are', 'Hey Hello. How are')
    expect(draft.base).toBe('Hey Hello.')
    // The final for the interim replaces it; nothing is duplicated.
    expect(draftText(draft, ['Hello.', 'How are you?'], '')).toBe('Hey Hello. How are you?')
  })

  it('keeps typing after the interim and drops only the provisional words', () => {
    let draft = startDraft('')
    draft = editDraft(draft, [], 'send it', 'send it now!')
    expect(draft.base).toBe(' now!')
    expect(draftText(draft, ['Send it.'], '')).toBe(' now! Send it.')
  })

  it("keeps the person's version when they edit the interim itself", () => {
    let draft = startDraft('A')
    draft = editDraft(draft, [], 'teh cat', 'A the cat')
    expect(draft.base).toBe('A the cat')
  })

  it('never loses typed text: every edit is in the next shown text', () => {
    let draft = startDraft('start')
    const steps: [string[], string, string][] = [
      [['one'], '', 'start one!'],
      [['one'], 'two', 'start one! typed two'],
      [['one', 'two three'], 'four', 'start one! typed two three four more'],
    ]
    for (const [finals, interim, value] of steps) {
      draft = editDraft(draft, finals, interim, value)
      const typed = value.split(' ').filter((w) => ['start', 'one!', 'typed', 'more'].includes(w))
      for (const word of typed) expect(draftText(draft, finals, interim)).toContain(word)
    }
  })
})

describe('draft with spoken punctuation (dictation finals)', () => {
  it.each([
    [',', 'Dear Maria,'],
    ['.', 'Dear Maria.'],
    ['?', 'Dear Maria?'],
    ['!', 'Dear Maria!'],
    [':', 'Dear Maria:'],
    [';', 'Dear Maria;'],
    ['\n', 'Dear Maria\n'],
    ['\n\n', 'Dear Maria\n\n'],
  ])('a final that is only %j attaches to the word before', (mark, expected) => {
    expect(draftText(startDraft(''), ['Dear Maria', mark], '')).toBe(expected)
    // The same after typed text.
    expect(draftText(startDraft('Dear Maria'), [mark], '')).toBe(expected)
  })

  it('composes a letter from separate finals with real line breaks', () => {
    const finals = ['Dear Maria', ',', '\n\n', 'thanks for the notes', '!', '\n', 'see you soon', '.']
    expect(draftText(startDraft(''), finals, '')).toBe('Dear Maria,\n\nThanks for the notes!\nSee you soon.')
  })

  it('joins a final that starts with a line break without a space before it', () => {
    expect(draftText(startDraft(''), ['Dear Maria,', '\n\nThanks for the notes!'], '')).toBe(
      'Dear Maria,\n\nThanks for the notes!',
    )
    expect(draftText(startDraft('Hi'), ['\nBye.'], '')).toBe('Hi\nBye.')
  })

  it('puts no space after a line break, and capitalizes after one', () => {
    expect(draftText(startDraft('Dear Maria,\n'), ['thanks'], '')).toBe('Dear Maria,\nThanks')
    expect(draftText(startDraft(''), ['Hello', '\n', 'world'], '')).toBe('Hello\nWorld')
    expect(draftText(startDraft(''), ['Hello', '\n\nworld'], '')).toBe('Hello\n\nWorld')
  })

  it.each([
    ['.', 'Done. Next'],
    ['?', 'Done? Next'],
    ['!', 'Done! Next'],
  ])('capitalizes the next final after %j, lower-case or not', (mark, expected) => {
    expect(draftText(startDraft(''), ['Done', mark, 'next'], '')).toBe(expected)
    expect(draftText(startDraft(''), ['Done', mark, 'Next'], '')).toBe(expected)
    expect(draftText(startDraft(''), [`Done${mark}`, 'next'], '')).toBe(expected)
  })

  it('does not capitalize after a comma, colon or semicolon, and never lower-cases', () => {
    expect(draftText(startDraft(''), ['Well', ',', 'maybe'], '')).toBe('Well, maybe')
    expect(draftText(startDraft(''), ['Items', ':', 'milk', ';', 'eggs'], '')).toBe('Items: milk; eggs')
    expect(draftText(startDraft(''), ['Call', 'NASA', 'today'], '')).toBe('Call NASA today')
    expect(draftText(startDraft(''), ['I said', ',', 'Maria'], '')).toBe('I said, Maria')
  })

  it('pairs straight quotes: a space before an opening quote, none inside', () => {
    const finals = ['She said', '"', 'hello', '"', 'and left', '.']
    expect(draftText(startDraft(''), finals, '')).toBe('She said "hello" and left.')
    expect(draftText(startDraft(''), ['She said', '"hello', '" and left.'], '')).toBe('She said "hello" and left.')
    expect(draftText(startDraft(''), ['She said "hello', '"', 'then', '"', 'bye', '"'], '')).toBe(
      'She said "hello" then "bye"',
    )
  })

  it('counts quotes the person typed before dictating', () => {
    expect(draftText(startDraft('Title: "'), ['Notes', '"'], '')).toBe('Title: "Notes"')
    expect(draftText(startDraft('a "b" c'), ['"', 'd', '"'], '')).toBe('a "b" c "d"')
  })

  it('capitalizes the first word inside an opening quote after a sentence end', () => {
    expect(draftText(startDraft(''), ['Yes.', '"', 'fine', '"'], '')).toBe('Yes. "Fine"')
    expect(draftText(startDraft(''), ['Yes.', '"fine"'], '')).toBe('Yes. "Fine"')
  })

  it('shows the interim with the same rules', () => {
    expect(draftText(startDraft(''), ['Dear Maria', ','], 'thanks for')).toBe('Dear Maria, thanks for')
    expect(draftText(startDraft(''), ['Dear Maria,', '\n\n'], 'thanks for')).toBe('Dear Maria,\n\nThanks for')
    expect(draftText(startDraft(''), ['Hello'], '?')).toBe('Hello?')
    expect(draftText(startDraft(''), ['Hello'], '\n')).toBe('Hello\n')
    // Before the final replaces it, the interim may still show the spoken word.
    expect(draftText(startDraft(''), ['Dear Maria'], 'comma')).toBe('Dear Maria comma')
  })

  it('keeps typed text exactly as typed, line breaks included', () => {
    const typed = '  Line one\n\n  indented  two  '
    expect(draftText(startDraft(typed), [], '')).toBe(typed)
    expect(draftText(startDraft(typed), ['more'], '').startsWith(typed)).toBe(true)
  })

  it('an edit during dictation keeps line breaks and drops the capitalized interim', () => {
    let draft = startDraft('')
    const finals = ['Dear Maria,', '\n\n']
    const shown = draftText(draft, finals, 'thanks')
    expect(shown).toBe('Dear Maria,\n\nThanks')
    // The person fixes the name while the interim shows; the interim is left out of the base.
    draft = editDraft(draft, finals, 'thanks', 'Dear María,\n\nThanks')
    expect(draft).toEqual({ base: 'Dear María,\n\n', consumed: 2 })
    expect(draftText(draft, [...finals, 'thanks for the notes!'], '')).toBe('Dear María,\n\nThanks for the notes!')
  })

  it('an interim that is only a line break is not duplicated by an edit', () => {
    let draft = startDraft('')
    draft = editDraft(draft, ['Hello'], '\n', 'Hi\n')
    expect(draft.base).toBe('Hi')
    expect(draftText(draft, ['Hello', '\n'], '')).toBe('Hi\n')
  })
})
