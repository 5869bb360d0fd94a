import { act, renderHook } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { fakeMedia, FakeAudioContext, lastSocket, type FakeMedia } from '../../client/test/fakes'
import { useSpeechToText, type UseSpeechToTextOptions } from './useSpeechToText'

const URL = 'ws://gateway.test/stt-stream'

function renderStt(media: FakeMedia = fakeMedia(), options: Partial<UseSpeechToTextOptions> = {}) {
  return renderHook((props: UseSpeechToTextOptions) => useSpeechToText(props), {
    initialProps: { url: URL, environment: () => media.env, ...options },
  })
}

describe('useSpeechToText', () => {
  it('returns flat idle state', () => {
    const { result } = renderStt()
    expect(result.current).toMatchObject({
      status: 'idle',
      interim: '',
      final: '',
      error: null,
      warning: null,
      level: 0,
      isActive: false,
      isRecording: false,
    })
  })

  it('goes connecting -> recording, shows interims in place and appends finals', async () => {
    const { result } = renderStt()
    await act(() => result.current.start())
    expect(result.current.status).toBe('connecting')
    const socket = lastSocket()
    act(() => socket.open())
    expect(result.current.isRecording).toBe(true)

    act(() => socket.receive({ type: 'interim_transcript', transcript: 'hello' }))
    expect(result.current.interim).toBe('hello')
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'hello wor' }))
    expect(result.current.interim).toBe('hello wor')
    act(() => socket.receive({ type: 'final_transcript', transcript: 'Hello world.', start: 0, end: 1, speech_final: true }))
    act(() => socket.receive({ type: 'final_transcript', transcript: 'Bye.', start: 1, end: 2, speech_final: true }))
    expect(result.current).toMatchObject({ final: 'Hello world. Bye.', interim: '' })

    await act(() => result.current.stop())
    expect(result.current.status).toBe('stopping')
    act(() => socket.receive({ type: 'stopped' }))
    expect(result.current.status).toBe('idle')
    expect(result.current.final).toBe('Hello world. Bye.')

    act(() => result.current.reset())
    expect(result.current.final).toBe('')
  })

  it('exposes a server warning while the session goes on, until the next start', async () => {
    const { result } = renderStt()
    await act(() => result.current.start())
    const socket = lastSocket()
    act(() => socket.open())
    act(() => socket.receive({ type: 'warning', code: 'reconnecting', message: 'upstream lost; attempt 1 of 3' }))
    expect(result.current.status).toBe('recording')
    expect(result.current.warning).toMatchObject({ code: 'reconnecting', message: 'upstream lost; attempt 1 of 3' })
    // Draining: the server ends the session after its finals; the hook finishes like a stop.
    act(() => socket.receive({ type: 'warning', code: 'draining', message: 'the server is shutting down' }))
    expect(result.current.status).toBe('stopping')
    expect(result.current.warning?.text).toMatch(/shutting down/)
    act(() => socket.receive({ type: 'stopped' }))
    expect(result.current.status).toBe('idle')
    expect(result.current.warning?.code).toBe('draining')
    await act(() => result.current.start())
    expect(result.current.warning).toBeNull()
  })

  it('reads the latest options at start (mode and url)', async () => {
    const media = fakeMedia()
    const { result, rerender } = renderStt(media)
    rerender({ url: 'ws://other.test/stt-stream', mode: 'webm', environment: () => media.env })
    await act(() => result.current.start())
    const socket = lastSocket()
    expect(socket.url).toBe('ws://other.test/stt-stream')
    act(() => socket.open())
    expect(socket.textFrames[0]).toMatchObject({ audio_format: { encoding: 'webm' } })
  })

  it('sends dictation: true in configure when the dictation option is on, and nothing when off', async () => {
    const media = fakeMedia()
    const { result, rerender } = renderStt(media, { dictation: true, stream: { language: 'en' } })
    await act(() => result.current.start())
    const first = lastSocket()
    act(() => first.open())
    expect(first.textFrames[0]).toMatchObject({ action: 'configure', language: 'en', dictation: true })
    await act(() => result.current.stop())
    act(() => first.receive({ type: 'stopped' }))

    // Turned off: read at the next start, and the field is left out entirely.
    rerender({ url: URL, environment: () => media.env, dictation: false, stream: { language: 'en' } })
    await act(() => result.current.start())
    const second = lastSocket()
    expect(second).not.toBe(first)
    act(() => second.open())
    expect(second.textFrames[0]).toMatchObject({ action: 'configure', language: 'en' })
    expect(second.textFrames[0]).not.toHaveProperty('dictation')
  })

  it('exposes the finals one by one, line-break finals included', async () => {
    const { result } = renderStt()
    await act(() => result.current.start())
    const socket = lastSocket()
    act(() => socket.open())
    for (const transcript of ['Dear Maria', ',', '\n\n', 'thanks!']) {
      act(() => socket.receive({ type: 'final_transcript', transcript, start: 0, end: 1, speech_final: true }))
    }
    expect(result.current.finals).toEqual(['Dear Maria', ',', '\n\n', 'thanks!'])
    expect(result.current.final).toBe('Dear Maria,\n\nThanks!')
  })

  it('reports permission denied with a clear message', async () => {
    const { result } = renderStt(fakeMedia({ failMic: 'NotAllowedError' }))
    await act(() => result.current.start())
    expect(result.current.status).toBe('permission_denied')
    expect(result.current.error).toMatch(/Microphone permission was denied/)
    expect(result.current.isRecording).toBe(false)
  })

  it('reports an unreachable gateway and never stays recording', async () => {
    const { result } = renderStt()
    await act(() => result.current.start())
    act(() => lastSocket().refuse())
    expect(result.current.status).toBe('gateway_unreachable')
    expect(result.current.error).toMatch(/Could not connect/)
  })

  it('unmount stops the original captured tracks, closes the AudioContext and the socket', async () => {
    const media = fakeMedia()
    const { result, unmount } = renderStt(media)
    await act(() => result.current.start())
    const socket = lastSocket()
    act(() => socket.open())
    expect(result.current.isRecording).toBe(true)
    const [stream] = media.streams
    const [context] = FakeAudioContext.instances

    unmount()

    // The very track objects getUserMedia returned (not clones) are stopped.
    expect(stream.tracks.map((t) => [t.stopCalls, t.readyState])).toEqual([[1, 'ended']])
    expect(context.closeCalls).toBe(1)
    expect(context.state).toBe('closed')
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: undefined }])
    // Late server frames after unmount are ignored without React warnings.
    socket.receive({ type: 'final_transcript', transcript: 'late', start: 0, end: 1, speech_final: true })
  })

  it('unmount while still asking for the microphone releases it once granted', async () => {
    const media = fakeMedia()
    let grant: () => void = () => undefined
    const track = { stop: () => undefined, stopped: false }
    track.stop = () => {
      track.stopped = true
    }
    media.env.mediaDevices = {
      getUserMedia: () =>
        new Promise<MediaStream>((resolve) => {
          grant = () => resolve({ getTracks: () => [track], getAudioTracks: () => [track] } as unknown as MediaStream)
        }),
    }
    const { result, unmount } = renderStt(media)
    let started: Promise<void> = Promise.resolve()
    act(() => {
      started = result.current.start()
    })
    unmount()
    grant()
    await started
    expect(track.stopped).toBe(true)
  })
})
