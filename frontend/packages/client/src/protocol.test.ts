import { describe, expect, it } from 'vitest'
import { configureMessage, describeServerError, encodeClientMessage, parseServerMessage, withDictation } from './protocol'

describe('client messages', () => {
  it('puts the options beside audio_format, with the defaults', () => {
    const message = configureMessage({ encoding: 'linear16', sample_rate: 16000, channels: 1 }, { language: 'en' })
    expect(JSON.parse(encodeClientMessage(message))).toEqual({
      action: 'configure',
      audio_format: { encoding: 'linear16', sample_rate: 16000, channels: 1 },
      interim_results: true,
      endpointing: 300,
      language: 'en',
    })
  })

  it('sends just the encoding for containers', () => {
    expect(configureMessage({ encoding: 'webm' }).audio_format).toEqual({ encoding: 'webm' })
  })

  it('leaves endpointing to the gateway with dictation on, unless the caller sets it', () => {
    const pcm = { encoding: 'linear16' as const, sample_rate: 16000, channels: 1 as const }
    expect(configureMessage(pcm).endpointing).toBe(300)
    expect(configureMessage(pcm, { dictation: true })).not.toHaveProperty('endpointing')
    expect(configureMessage(pcm, { dictation: true }).interim_results).toBe(true)
    expect(configureMessage(pcm, { dictation: true, endpointing: 500 }).endpointing).toBe(500)
  })

  it('withDictation adds dictation: true when on and leaves the field out when off', () => {
    const pcm = { encoding: 'linear16', sample_rate: 16000, channels: 1 } as const
    const on = JSON.parse(encodeClientMessage(configureMessage(pcm, withDictation({ language: 'en' }, true))))
    expect(on).toMatchObject({ action: 'configure', language: 'en', dictation: true })
    // Off: no field at all (a gateway without the option refuses unknown fields, even false).
    const off = JSON.parse(encodeClientMessage(configureMessage(pcm, withDictation({ language: 'en', dictation: true }, false))))
    expect(off).toMatchObject({ language: 'en' })
    expect(off).not.toHaveProperty('dictation')
    expect(withDictation(undefined, false)).toEqual({})
    expect(withDictation(undefined, true)).toEqual({ dictation: true })
    // Not given: the options as they are.
    const options = { keyterms: ['voxrelay'] }
    expect(withDictation(options, undefined)).toBe(options)
  })

  it('encodes stop and finalize', () => {
    expect(encodeClientMessage({ action: 'stop' })).toBe('{"action":"stop"}')
    expect(encodeClientMessage({ action: 'finalize' })).toBe('{"action":"finalize"}')
  })
})

describe('parseServerMessage', () => {
  it.each([
    ['{"type":"ready","session_id":"abc","engine":"local"}', { type: 'ready', session_id: 'abc', engine: 'local' }],
    ['{"type":"interim_transcript","transcript":"hel"}', { type: 'interim_transcript', transcript: 'hel' }],
    [
      '{"type":"final_transcript","transcript":"Hello.","start":0.5,"end":1.25,"speech_final":true}',
      { type: 'final_transcript', transcript: 'Hello.', start: 0.5, end: 1.25, speech_final: true },
    ],
    ['{"type":"speech_started","timestamp":0.3}', { type: 'speech_started', timestamp: 0.3 }],
    ['{"type":"utterance_end","last_word_end":2}', { type: 'utterance_end', last_word_end: 2 }],
    [
      '{"type":"error","code":"engine_error","message":"boom"}',
      { type: 'error', code: 'engine_error', message: 'boom' },
    ],
    ['{"type":"warning","code":"draining","message":"soon"}', { type: 'warning', code: 'draining', message: 'soon' }],
    ['{"type":"stopped"}', { type: 'stopped' }],
  ])('%s', (text, expected) => {
    expect(parseServerMessage(text)).toEqual(expected)
  })

  it.each(['not json', '[]', 'null', '{"type":"mystery"}', '{"type":"final_transcript"}', '{"transcript":"x"}'])(
    'returns null for %s',
    (text) => {
      expect(parseServerMessage(text)).toBeNull()
    },
  )
})

describe('describeServerError', () => {
  it('explains known codes and keeps the server detail', () => {
    expect(describeServerError({ code: 'engine_unavailable', message: 'model is loading' })).toBe(
      'The speech engine is not available: model is loading',
    )
    expect(describeServerError({ code: 'weird', message: '' })).toBe('Gateway error (weird).')
  })
})
