import { describe, expect, it } from 'vitest'
import { draftText, draftView, editDraft, moveCaret, startDraft } from './draft'

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
    expect(draftText(draft, ['Hello world.'], '')).toBe('Hi Hello world. Bob')
    expect(draft.consumed).toBe(1)
    expect(draftText(draft, ['Hello world.', 'Next one.'], '')).toBe('Hi Hello world. Bob Next one.')
  })

  it('takes the interim out of the base when it is intact at the end', () => {
    let draft = startDraft('Hi')
    const shown = draftText(draft, ['Hello.'], 'how are')
    expect(shown).toBe('Hi Hello. How are')
    // The person edits the committed part: "Hi" -> "Hey".
    draft = editDraft(draft, ['Hello.'], 'how are', 'Hey Hello. How are')
    expect(draftText(draft, ['Hello.'], '')).toBe('Hey Hello.')
    // The final for the interim replaces it; nothing is duplicated.
    expect(draftText(draft, ['Hello.', 'How are you?'], '')).toBe('Hey Hello. How are you?')
  })

  it('keeps typing after the interim and drops only the provisional words', () => {
    let draft = startDraft('')
    draft = editDraft(draft, [], 'send it', 'send it now!')
    expect(draftText(draft, [], '')).toBe(' now!')
    expect(draftText(draft, ['Send it.'], '')).toBe(' now! Send it.')
  })

  it("keeps the person's version when they edit the interim itself", () => {
    let draft = startDraft('A')
    draft = editDraft(draft, [], 'teh cat', 'A the cat')
    expect(draftText(draft, [], '')).toBe('A the cat')
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
    expect(draftText(draft, finals, '')).toBe('Dear María,\n\n')
    expect(draft.consumed).toBe(2)
    expect(draftText(draft, [...finals, 'thanks for the notes!'], '')).toBe('Dear María,\n\nThanks for the notes!')
  })

  it('an interim that is only a line break is not duplicated by an edit', () => {
    let draft = startDraft('')
    draft = editDraft(draft, ['Hello'], '\n', 'Hi\n')
    expect(draftText(draft, ['Hello'], '')).toBe('Hi')
    expect(draftText(draft, ['Hello', '\n'], '')).toBe('Hi\n')
  })
})

describe('draft at the caret (OS dictation)', () => {
  it('inserts at the caret with a space on each side of a word', () => {
    const text = 'Buy milk today'
    const draft = startDraft(text, 'Buy milk'.length)
    expect(draftText(draft, ['and eggs'], '')).toBe('Buy milk and eggs today')
    // The caret is after the dictated text, so the next final follows it.
    const view = draftView(draft, ['and eggs'], '')
    expect(view.selectionStart).toBe('Buy milk and eggs'.length)
    expect(view.selectionEnd).toBe(view.selectionStart)
    expect(draftText(draft, ['and eggs', 'and bread'], '')).toBe('Buy milk and eggs and bread today')
  })

  it('does not add spaces the text around the caret already has', () => {
    // Caret after "milk " (before "today"): no space before; "today" follows after a space.
    expect(draftText(startDraft('Buy milk today', 9), ['eggs'], '')).toBe('Buy milk eggs today')
    // Caret before " today": a space before the dictated words, none added after.
    expect(draftText(startDraft('Buy milk today', 8), ['eggs'], '')).toBe('Buy milk eggs today')
  })

  it('puts no space before a mark and none after a line break or opening quote', () => {
    expect(draftText(startDraft('Hello world', 5), [','], '')).toBe('Hello, world')
    expect(draftText(startDraft('Hi\nthere', 3), ['well'], '')).toBe('Hi\nWell there')
    expect(draftText(startDraft('Say "', 5), ['hi'], '')).toBe('Say "hi')
    expect(draftText(startDraft('(x)', 1), ['note'], '')).toBe('(note x)')
    // A final ending with a line break gets no space after it; the typed space stays.
    expect(draftText(startDraft('Topbottom', 3), ['\n'], '')).toBe('Top\nbottom')
    expect(draftText(startDraft('Top bottom', 3), ['\n'], '')).toBe('Top\n bottom')
  })

  it('adds a space after the dictated text before a letter or digit, not before a mark', () => {
    expect(draftText(startDraft('Ready.', 5), ['set'], '')).toBe('Ready set.')
    expect(draftText(startDraft('Call 5', 5), ['me at'], '')).toBe('Call me at 5')
    // The char before is a combining mark (e + U+0301): a space goes before the dictated text.
    expect(draftText(startDraft('Café', 4), ['latte'], '')).toBe('Café latte')
    expect(draftText(startDraft('Cafe\u0301', 5), ['latte'], '')).toBe('Cafe\u0301 latte')
  })

  it('capitalizes after a sentence end before the caret', () => {
    expect(draftText(startDraft('Done. Next', 6), ['then'], '')).toBe('Done. Then Next')
  })

  it('replaces a selection once something is dictated', () => {
    const text = 'Buy red apples'
    const draft = startDraft(text, 4, 7) // "red"
    const idle = draftView(draft, [], '')
    expect(idle.text).toBe(text)
    expect([idle.selectionStart, idle.selectionEnd]).toEqual([4, 7])
    expect(draftText(draft, [], 'gree')).toBe('Buy gree apples')
    expect(draftText(draft, ['green'], '')).toBe('Buy green apples')
  })

  it('shows the interim at the caret, and the caret before it', () => {
    const draft = startDraft('Start end', 5)
    const view = draftView(draft, ['one'], 'two')
    expect(view.text).toBe('Start one two end')
    expect(view.text.slice(view.interimStart, view.interimEnd)).toBe(' two')
    expect(view.selectionStart).toBe('Start one'.length)
  })

  it('moves the insertion point when the caret moves; the interim moves with it', () => {
    let draft = startDraft('Alpha omega')
    const finals = ['beta']
    expect(draftText(draft, finals, 'gam')).toBe('Alpha omega beta gam')
    // The person clicks between "Alpha" and " omega".
    draft = moveCaret(draft, finals, 'gam', 5)
    expect(draftText(draft, finals, 'gam')).toBe('Alpha gam omega beta')
    expect(draftText(draft, [...finals, 'gamma'], '')).toBe('Alpha gamma omega beta')
    expect(draftView(draft, [...finals, 'gamma'], '').selectionStart).toBe('Alpha gamma'.length)
  })

  it('keeps the draft when the caret stays at the insertion point or lands in the interim', () => {
    const draft = startDraft('One two', 3)
    const view = draftView(draft, ['and a half'], 'more')
    expect(moveCaret(draft, ['and a half'], 'more', view.selectionStart)).toBe(draft)
    expect(moveCaret(draft, ['and a half'], 'more', view.interimStart + 2)).toBe(draft)
  })

  it('folds the finals in when the caret moves, and drops a pending selection', () => {
    let draft = startDraft('a b c', 2, 3) // "b" selected
    draft = moveCaret(draft, [], '', 0)
    expect(draftText(draft, [], '')).toBe('a b c')
    expect(draftText(draft, ['Z'], '')).toBe('Z a b c')
  })

  it('keeps text typed at the caret during dictation and dictates after it', () => {
    let draft = startDraft('Hello world', 5)
    const finals = ['there']
    let shown = draftText(draft, finals, 'how')
    expect(shown).toBe('Hello there how world')
    // The caret is after "there" (before the interim): the person types ",".
    const value = 'Hello there, how world'
    draft = editDraft(draft, finals, 'how', value, 'Hello there,'.length)
    shown = draftText(draft, finals, 'how')
    expect(shown).toBe('Hello there, how world')
    expect(draftText(draft, [...finals, 'how are you'], '')).toBe('Hello there, how are you world')
  })

  it('keeps typing elsewhere and moves dictation to the typing', () => {
    let draft = startDraft('abc')
    const finals = ['one']
    expect(draftText(draft, finals, 'two')).toBe('abc one two')
    // The person clicks at the start and types "X " there while the interim shows.
    draft = editDraft(draft, finals, 'two', 'X abc one two', 2)
    expect(draftText(draft, finals, 'two')).toBe('X two abc one')
    expect(draftText(draft, [...finals, 'two.'], '')).toBe('X two. abc one')
  })

  it('keeps typing after the interim and puts the final before it only if the caret is there', () => {
    let draft = startDraft('')
    // Shown "Send it"; the person types "!" at the end: the caret is after the typing.
    draft = editDraft(draft, [], 'send it', 'send it!', 8)
    expect(draftText(draft, [], '')).toBe('!')
    expect(draftText(draft, ['Send it'], '')).toBe('! Send it')
  })

  it('an ambiguous insertion is placed by the caret', () => {
    // Shown "Hi hello" (interim "hello"); the person types a space right after "Hi".
    let draft = startDraft('Hi')
    expect(draftText(draft, [], 'hello')).toBe('Hi hello')
    draft = editDraft(draft, [], 'hello', 'Hi  hello', 3)
    expect(draftText(draft, [], '')).toBe('Hi ')
    expect(draftText(draft, ['hello'], '')).toBe('Hi hello')
  })

  it('never loses text typed anywhere during dictation', () => {
    let draft = startDraft('first last', 5)
    let finals: string[] = []
    const typed: string[] = []
    const start = (): number => 0
    const end = (shown: string): number => shown.length
    const beforeLast = (shown: string): number => shown.indexOf('last')
    const steps: [string, string, (shown: string) => number][] = [
      // [final to add (or ''), interim, where the person types in the shown text]
      ['alpha', 'be', start],
      ['', 'beta', end],
      ['beta gamma', '', beforeLast],
      ['', 'delta', end],
    ]
    let n = 0
    for (const [final, interim, at] of steps) {
      if (final) finals = [...finals, final]
      const shown = draftText(draft, finals, interim)
      const pos = at(shown)
      const word = ` typed${n++} `
      typed.push(word.trim())
      const value = shown.slice(0, pos) + word + shown.slice(pos)
      draft = editDraft(draft, finals, interim, value, pos + word.length)
      for (const w of [...typed, 'first', 'last']) expect(draftText(draft, finals, interim)).toContain(w)
    }
    for (const w of [...typed, 'first', 'last', 'alpha', 'beta gamma']) {
      expect(draftText(draft, [...finals, 'delta'], '')).toContain(w)
    }
  })
})
