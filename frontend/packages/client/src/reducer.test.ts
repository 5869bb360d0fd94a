import { describe, expect, it } from 'vitest'
import type { ServerMessage } from './protocol'
import {
  cleanTranscript,
  initialSttState,
  isActive,
  isFailure,
  joinText,
  selectFinal,
  sttReducer,
  type SttAction,
  type SttState,
} from './reducer'

const run = (actions: SttAction[], from: SttState = initialSttState): SttState => actions.reduce(sttReducer, from)
const server = (message: ServerMessage): SttAction => ({ type: 'server', message })
const interim = (transcript: string): SttAction => server({ type: 'interim_transcript', transcript })
const final = (transcript: string): SttAction =>
  server({ type: 'final_transcript', transcript, start: 0, end: 1, speech_final: true })

describe('sttReducer', () => {
  it('starts idle and empty', () => {
    expect(initialSttState).toEqual({ status: 'idle', finals: [], interim: '', error: null, warning: null })
  })

  it('follows the status events of a run', () => {
    const state = run([
      { type: 'status', status: 'connecting' },
      { type: 'status', status: 'recording' },
      { type: 'status', status: 'stopping' },
      { type: 'status', status: 'idle' },
    ])
    expect(state.status).toBe('idle')
  })

  it('replaces the interim in place and clears it on a final', () => {
    let state = run([{ type: 'status', status: 'connecting' }, interim('hello'), interim('hello wor')])
    expect(state.interim).toBe('hello wor')
    expect(state.finals).toEqual([])
    state = sttReducer(state, final(' Hello world. '))
    expect(state.finals).toEqual(['Hello world.'])
    expect(state.interim).toBe('')
  })

  it('appends finals in order and joins them with single spaces', () => {
    const state = run([final('Hello there.'), interim('how'), final(' How are you?'), final('')])
    expect(state.finals).toEqual(['Hello there.', 'How are you?'])
    expect(selectFinal(state)).toBe('Hello there. How are you?')
  })

  it('keeps an empty final from adding anything but still clears the interim', () => {
    const state = run([interim('uh'), final('   ')])
    expect(state.finals).toEqual([])
    expect(state.interim).toBe('')
  })

  it('keeps finals that are only a line break or a mark (spoken punctuation)', () => {
    const state = run([final('Dear Maria'), final(','), final('\n\n'), final(' thanks for the notes'), final('!')])
    expect(state.finals).toEqual(['Dear Maria', ',', '\n\n', 'thanks for the notes', '!'])
    expect(selectFinal(state)).toBe('Dear Maria,\n\nThanks for the notes!')
  })

  it('keeps the line breaks a final starts or ends with', () => {
    const state = run([final('Dear Maria,\n'), final('\nThanks for the notes!')])
    expect(state.finals).toEqual(['Dear Maria,\n', '\nThanks for the notes!'])
    expect(selectFinal(state)).toBe('Dear Maria,\n\nThanks for the notes!')
  })

  it('keeps a line break in the interim', () => {
    expect(run([interim(' Dear Maria,\n ')]).interim).toBe('Dear Maria,\n')
  })

  it('ignores the other server messages', () => {
    const before = run([final('a')])
    const after = run(
      [
        server({ type: 'ready', session_id: 's', engine: 'local' }),
        server({ type: 'speech_started', timestamp: 1 }),
        server({ type: 'utterance_end', last_word_end: 2 }),
        { type: 'level', level: 0.5 },
      ],
      before,
    )
    expect(after).toBe(before)
  })

  it('keeps the last server warning, in words for people, until the next run', () => {
    const state = run([
      { type: 'status', status: 'connecting' },
      { type: 'status', status: 'recording' },
      server({ type: 'warning', code: 'reconnecting', message: 'lost the upstream; attempt 1 of 3' }),
      final('a'),
      server({ type: 'warning', code: 'draining', message: 'the server is shutting down' }),
      { type: 'status', status: 'idle' },
    ])
    expect(state.status).toBe('idle')
    expect(state.finals).toEqual(['a'])
    expect(state.warning).toEqual({
      code: 'draining',
      message: 'the server is shutting down',
      text: 'The dictation server is shutting down: this dictation ends after its last words.',
    })
    const next = sttReducer(state, { type: 'status', status: 'connecting' })
    expect(next.warning).toBeNull()
    expect(sttReducer(state, { type: 'reset' }).warning).toBeNull()
  })

  it('shows an unknown warning by its message, or its code', () => {
    expect(run([server({ type: 'warning', code: 'slow', message: 'The engine is slow.' })]).warning?.text).toBe(
      'The engine is slow.',
    )
    expect(run([server({ type: 'warning', code: 'slow', message: ' ' })]).warning?.text).toBe('Gateway warning (slow).')
  })

  it('clears the transcript and error when a new run starts', () => {
    const ended = run([final('old words'), { type: 'error', status: 'error', message: 'boom', fatal: true }])
    expect(ended.status).toBe('error')
    const next = sttReducer(ended, { type: 'status', status: 'connecting' })
    expect(next).toEqual({ status: 'connecting', finals: [], interim: '', error: null, warning: null })
  })

  it('shows a non-fatal error without leaving recording', () => {
    const state = run([
      { type: 'status', status: 'connecting' },
      { type: 'status', status: 'recording' },
      { type: 'error', status: 'error', message: 'configure ignored', fatal: false },
    ])
    expect(state.status).toBe('recording')
    expect(state.error).toBe('configure ignored')
  })

  it.each(['permission_denied', 'no_microphone', 'gateway_unreachable', 'error'] as const)(
    'a fatal %s error ends in that status with the message',
    (status) => {
      const state = run([
        { type: 'status', status: 'connecting' },
        interim('half a sent'),
        { type: 'error', status, message: 'why', fatal: true },
      ])
      expect(state.status).toBe(status)
      expect(isFailure(state.status)).toBe(true)
      expect(isActive(state.status)).toBe(false)
      expect(state.error).toBe('why')
      expect(state.interim).toBe('half a sent')
    },
  )

  it('reset clears text and error but keeps an active status', () => {
    const recording = run([
      { type: 'status', status: 'connecting' },
      { type: 'status', status: 'recording' },
      final('x'),
      interim('y'),
    ])
    expect(sttReducer(recording, { type: 'reset' })).toEqual({ status: 'recording', finals: [], interim: '', error: null, warning: null })
    const failed = run([{ type: 'error', status: 'error', message: 'e', fatal: true }])
    expect(sttReducer(failed, { type: 'reset' }).status).toBe('idle')
  })

  it('returns the same state for a repeated status or interim', () => {
    const state = run([interim('same')])
    expect(sttReducer(state, interim('same'))).toBe(state)
    expect(sttReducer(state, { type: 'status', status: 'idle' })).toBe(state)
  })
})

describe('joinText', () => {
  it.each([
    [['Hello', 'world'], 'Hello world'],
    [['', 'world'], 'world'],
    [['Hello', ''], 'Hello'],
    [['Hello ', 'world'], 'Hello world'],
    [['Hello', '  world'], 'Hello world'],
    [['Hello\n', 'world'], 'Hello\nWorld'],
    [['Hello', '\n', 'world'], 'Hello\nWorld'],
    [['Hello', '\n\nWorld'], 'Hello\n\nWorld'],
    [['Hello.', 'world'], 'Hello. World'],
    [['Hello?', '"', 'yes', '"'], 'Hello? "Yes"'],
    [['say', '"', 'hi', '"', 'now'], 'say "hi" now'],
    [['Hello', ';'], 'Hello;'],
    [['Hello', ':'], 'Hello:'],
    [['(', 'aside', ')'], '(aside)'],
    [['Hello', 'world', '?'], 'Hello world?'],
    [['Hello', ', world'], 'Hello, world'],
    [['Hello', '.'], 'Hello.'],
    [['Dear Sam,', 'thanks', 'for', 'lunch'], 'Dear Sam, thanks for lunch'],
    [['  indented', 'text'], '  indented text'],
    [[], ''],
  ])('%j -> %j', (parts, expected) => {
    expect(joinText(...parts)).toBe(expected)
  })
})

describe('cleanTranscript', () => {
  it.each([
    [' Hello world. ', 'Hello world.'],
    ['\tHello\t', 'Hello'],
    ['   ', ''],
    ['\n', '\n'],
    ['\n\n', '\n\n'],
    [' \n\n Thanks', '\n\nThanks'],
    ['Dear Maria, \n\n Thanks', 'Dear Maria,\n\nThanks'],
    ['one\r\ntwo', 'one\ntwo'],
    ['a  b', 'a  b'],
  ])('%j -> %j', (text, expected) => {
    expect(cleanTranscript(text)).toBe(expected)
  })
})
