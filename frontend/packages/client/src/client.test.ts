import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  fakeMedia,
  FakeWebSocket,
  FakeAudioContext,
  FakeMediaRecorder,
  FakeWorkletNode,
  flush,
  lastSocket,
  type FakeMedia,
} from '../test/fakes'
import { browserEnvironment, microphoneFailure, SttClient, type SttStartOptions } from './client'
import type { SttClientEvent } from './reducer'
import { TokenError } from './auth'

const URL = 'ws://gateway.test/stt-stream'

function setup(media: FakeMedia = fakeMedia()) {
  const client = new SttClient(() => media.env)
  const events: SttClientEvent[] = []
  client.subscribe((event) => events.push(event))
  const statuses = () =>
    events.flatMap((e) => (e.type === 'status' ? [e.status] : e.type === 'error' && e.fatal ? [e.status] : []))
  const errors = () => events.flatMap((e) => (e.type === 'error' ? [e.message] : []))
  return { client, media, events, statuses, errors }
}

/** Start a PCM run and bring it to `recording`. */
async function recording(options: Partial<SttStartOptions> = {}, media?: FakeMedia) {
  const t = setup(media)
  await t.client.start({ url: URL, ...options })
  const socket = lastSocket()
  socket.open()
  return { ...t, socket }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('SttClient (PCM)', () => {
  it('asks for a mono microphone without browser processing', async () => {
    const { media } = await recording()
    expect(media.getUserMedia.calls[0]).toEqual({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    })
  })

  it('sets up a 16 kHz AudioWorklet with 50 ms frames from a separate module', async () => {
    await recording()
    const context = FakeAudioContext.instances[0]
    expect(context.sampleRate).toBe(16000)
    expect(context.modules).toEqual(['/assets/pcm-worklet.js'])
    const node = FakeWorkletNode.instances[0]
    expect(node.name).toBe('voxrelay-pcm16')
    expect(node.options.processorOptions).toEqual({ frameSamples: 800 })
    expect(node.options.channelCount).toBe(1)
    expect(context.sources[0].connectedTo).toEqual([node])
  })

  it('sends configure first, then the audio captured before the socket opened, then live frames', async () => {
    const t = setup()
    await t.client.start({ url: URL })
    const socket = lastSocket()
    expect(socket.url).toBe(URL)
    expect(socket.binaryType).toBe('arraybuffer')
    const node = FakeWorkletNode.instances[0]
    const early = node.emitPcm([1, 2, 3])
    expect(socket.sent).toEqual([])
    expect(t.statuses()).toEqual(['connecting'])

    socket.open()
    expect(t.statuses()).toEqual(['connecting', 'recording'])
    expect(JSON.parse(socket.sent[0] as string)).toEqual({
      action: 'configure',
      audio_format: { encoding: 'linear16', sample_rate: 16000, channels: 1 },
      interim_results: true,
      endpointing: 300,
    })
    expect(socket.sent[1]).toBe(early)
    const live = node.emitPcm([4, 5])
    expect(socket.sent[2]).toBe(live)
  })

  it('passes recognition options in configure', async () => {
    const { socket } = await recording({ stream: { language: 'en', keyterms: ['voxrelay'] } })
    expect(socket.textFrames[0]).toMatchObject({ language: 'en', keyterms: ['voxrelay'] })
  })

  it('forwards transcripts and reports the level', async () => {
    const { socket, events } = await recording()
    socket.receive({ type: 'ready', session_id: 's1', engine: 'local' })
    socket.receive({ type: 'interim_transcript', transcript: 'hel' })
    socket.receive({ type: 'final_transcript', transcript: 'Hello.', start: 0, end: 1, speech_final: true })
    socket.receive({ type: 'mystery' })
    FakeWorkletNode.instances[0].emitPcm([1], 0.42)
    expect(events.filter((e) => e.type === 'server').map((e) => e.type === 'server' && e.message.type)).toEqual([
      'ready',
      'interim_transcript',
      'final_transcript',
    ])
    expect(events).toContainEqual({ type: 'level', level: 0.42 })
  })

  it('stop: flushes the last frame, releases the mic, sends stop and waits for stopped', async () => {
    const { client, socket, media, statuses } = await recording()
    const context = FakeAudioContext.instances[0]
    const node = FakeWorkletNode.instances[0]
    await client.stop()
    expect(node.port.posted).toContainEqual({ type: 'flush' })
    // The flushed partial frame went out before stop.
    const stopIndex = socket.sent.indexOf('{"action":"stop"}')
    expect(stopIndex).toBeGreaterThan(0)
    expect(socket.sent[stopIndex - 1]).toBe(node.port.flushReply)
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(context.state).toBe('closed')
    expect(node.disconnected).toBe(true)
    // The socket stays open for the last finals.
    expect(socket.closeCalls).toEqual([])
    expect(statuses()).toEqual(['connecting', 'recording', 'stopping'])

    socket.receive({ type: 'final_transcript', transcript: 'last words', start: 0, end: 1, speech_final: true })
    socket.receive({ type: 'stopped' })
    expect(statuses()).toEqual(['connecting', 'recording', 'stopping', 'idle'])
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: undefined }])
    expect(client.status).toBe('idle')
  })

  it('a draining warning ends the run like stop: mic released, no more audio, no error for frames in flight', async () => {
    const { client, socket, media, statuses, errors, events } = await recording()
    const node = FakeWorkletNode.instances[0]
    socket.receive({ type: 'warning', code: 'draining', message: 'the server is shutting down' })
    expect(events).toContainEqual({
      type: 'server',
      message: { type: 'warning', code: 'draining', message: 'the server is shutting down' },
    })
    expect(statuses()).toEqual(['connecting', 'recording', 'stopping'])
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(node.disconnected).toBe(true)
    const sentBefore = socket.sent.length
    // A frame the server refused because it arrived after its cut.
    socket.receive({ type: 'error', code: 'bad_request', message: 'audio after stop is ignored' })
    expect(errors()).toEqual([])
    await client.stop()
    expect(socket.sent.length).toBe(sentBefore)
    socket.receive({ type: 'final_transcript', transcript: 'last words', start: 0, end: 1, speech_final: true })
    socket.receive({ type: 'stopped' })
    expect(statuses().at(-1)).toBe('idle')
    expect(socket.textFrames.some((m) => m.action === 'stop')).toBe(false)
  })

  it('stop: a normal close after stop without `stopped` also ends idle', async () => {
    const { client, socket, statuses } = await recording()
    await client.stop()
    socket.serverClose(1000)
    expect(statuses().at(-1)).toBe('idle')
  })

  it('stop: gives up after the timeout and says the last words may be missing', async () => {
    vi.useFakeTimers()
    const { client, socket, statuses, errors } = await recording({ stopTimeoutMs: 2000 })
    await client.stop()
    vi.advanceTimersByTime(2001)
    expect(statuses().at(-1)).toBe('error')
    expect(errors().at(-1)).toMatch(/did not finish/)
    expect(socket.closeCalls).toHaveLength(1)
  })

  it('stop while connecting cancels: mic released, socket closed, idle', async () => {
    const t = setup()
    await t.client.start({ url: URL })
    const socket = lastSocket()
    await t.client.stop()
    expect(t.statuses()).toEqual(['connecting', 'idle'])
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(FakeAudioContext.instances[0].state).toBe('closed')
    expect(socket.closeCalls).toHaveLength(1)
  })

  it('ignores start while a run is active and can start again after it ends', async () => {
    const { client, socket, media } = await recording()
    await client.start({ url: URL })
    expect(media.getUserMedia.calls).toHaveLength(1)
    await client.stop()
    socket.receive({ type: 'stopped' })
    await client.start({ url: URL })
    expect(media.getUserMedia.calls).toHaveLength(2)
  })
})

describe('SttClient failures: state never stays recording, everything is released', () => {
  it.each([
    ['NotAllowedError', 'permission_denied', /permission was denied/],
    ['NotFoundError', 'no_microphone', /No microphone/],
    ['NotReadableError', 'error', /another application/],
  ])('getUserMedia %s -> %s', async (name, status, message) => {
    const t = setup(fakeMedia({ failMic: name }))
    await t.client.start({ url: URL })
    expect(t.statuses()).toEqual(['connecting', status])
    expect(t.errors()[0]).toMatch(message)
    expect(t.client.status).toBe('error')
  })

  it('no mediaDevices (insecure page) is reported, not thrown', async () => {
    const media = fakeMedia()
    media.env.mediaDevices = undefined
    const t = setup(media)
    await t.client.start({ url: URL })
    expect(t.statuses()).toEqual(['connecting', 'no_microphone'])
    expect(t.errors()[0]).toMatch(/https or from localhost/)
  })

  it('gateway unreachable: the socket closes before opening', async () => {
    const t = setup()
    await t.client.start({ url: URL })
    lastSocket().refuse()
    expect(t.statuses()).toEqual(['connecting', 'gateway_unreachable'])
    expect(t.errors()[0]).toMatch(/Could not connect to the dictation gateway at ws:\/\/gateway.test/)
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(FakeAudioContext.instances[0].state).toBe('closed')
  })

  it('gateway unreachable: the connect timeout fires', async () => {
    vi.useFakeTimers()
    const t = setup()
    await t.client.start({ url: URL, connectTimeoutMs: 3000 })
    vi.advanceTimersByTime(3001)
    expect(t.statuses()).toEqual(['connecting', 'gateway_unreachable'])
    expect(t.errors()[0]).toMatch(/timed out/)
    expect(lastSocket().closeCalls).toHaveLength(1)
  })

  it('an invalid gateway URL is an error, not an exception', async () => {
    const media = fakeMedia()
    media.env.WebSocket = class {
      constructor() {
        throw new SyntaxError('bad url')
      }
    } as unknown as typeof WebSocket
    const t = setup(media)
    await t.client.start({ url: 'nope' })
    expect(t.statuses()).toEqual(['connecting', 'gateway_unreachable'])
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
  })

  it('a server error frame is shown at once; the close that follows ends the run with it', async () => {
    const { socket, statuses, errors, media } = await recording()
    socket.receive({ type: 'error', code: 'engine_unavailable', message: 'model failed to load' })
    expect(statuses()).toEqual(['connecting', 'recording'])
    expect(errors()).toEqual(['The speech engine is not available: model failed to load'])
    socket.serverClose(1011, 'model failed to load')
    expect(statuses()).toEqual(['connecting', 'recording', 'error'])
    expect(errors().at(-1)).toBe('The speech engine is not available: model failed to load')
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(FakeAudioContext.instances[0].state).toBe('closed')
  })

  it('an unexpected close while recording is an error with the code', async () => {
    const { socket, statuses, errors } = await recording()
    socket.serverClose(1006)
    expect(statuses().at(-1)).toBe('error')
    expect(errors().at(-1)).toBe('The connection to the dictation gateway closed unexpectedly (code 1006).')
  })

  it('the microphone going away ends the run', async () => {
    const { socket, statuses, media } = await recording()
    media.streams[0].tracks[0].end()
    expect(statuses().at(-1)).toBe('no_microphone')
    expect(socket.closeCalls).toHaveLength(1)
  })

  it('a worklet that cannot load (e.g. blocked by CSP) is reported and cleaned up', async () => {
    const media = fakeMedia()
    FakeAudioContext.failAddModule = new DOMException('blocked', 'AbortError')
    const t = setup(media)
    await t.client.start({ url: URL })
    lastSocket().open()
    expect(t.statuses()).toEqual(['connecting', 'error'])
    expect(t.errors()[0]).toMatch(/Could not load the audio processor/)
    expect(lastSocket().closeCalls).toHaveLength(1)
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
  })

  it('when the gateway is down, its error wins over the worklet fetch that failed with it', async () => {
    const t = setup()
    FakeAudioContext.failAddModule = new DOMException('fetch failed', 'AbortError')
    await t.client.start({ url: URL })
    expect(t.statuses()).toEqual(['connecting'])
    lastSocket().refuse()
    expect(t.statuses()).toEqual(['connecting', 'gateway_unreachable'])
    expect(t.errors()).toEqual([expect.stringMatching(/Could not connect to the dictation gateway/)])
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
  })

  it('a capture failure is reported once the socket opens', async () => {
    const t = setup()
    FakeAudioContext.failAddModule = new DOMException('blocked', 'AbortError')
    await t.client.start({ url: URL })
    const socket = lastSocket()
    socket.open()
    expect(t.statuses()).toEqual(['connecting', 'error'])
    expect(t.errors()[0]).toMatch(/Could not load the audio processor/)
    expect(socket.sent).toEqual([])
    expect(socket.closeCalls).toHaveLength(1)
  })

  it('a socket that stays too far behind fails instead of buffering forever', async () => {
    const { socket, statuses } = await recording()
    socket.bufferedAmount = 64 * 1024 * 1024
    FakeWorkletNode.instances[0].emitPcm([1])
    expect(statuses().at(-1)).toBe('error')
  })
})

describe('SttClient (webm/opus)', () => {
  it('records audio/webm;codecs=opus, configures {"encoding":"webm"} and sends chunks in order', async () => {
    const t = setup()
    await t.client.start({ url: URL, mode: 'webm' })
    const recorder = FakeMediaRecorder.instances[0]
    expect(recorder.options.mimeType).toBe('audio/webm;codecs=opus')
    expect(recorder.timeslice).toBe(100)
    expect(FakeAudioContext.instances).toHaveLength(0)
    const header = recorder.emitChunk('header+first')
    const socket = lastSocket()
    socket.open()
    const second = recorder.emitChunk()
    expect(socket.textFrames[0]).toMatchObject({ action: 'configure', audio_format: { encoding: 'webm' } })
    expect(socket.sent.slice(1)).toEqual([header, second])
  })

  it('stop waits for the recorder to hand over its last chunk before sending stop', async () => {
    const t = setup()
    await t.client.start({ url: URL, mode: 'webm' })
    const socket = lastSocket()
    socket.open()
    await t.client.stop()
    const last = socket.sent.at(-2) as Blob
    expect(await last.text()).toBe('last-chunk')
    expect(socket.sent.at(-1)).toBe('{"action":"stop"}')
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
  })

  it('says so when the browser cannot record webm/opus', async () => {
    const t = setup()
    FakeMediaRecorder.supported = false
    await t.client.start({ url: URL, mode: 'webm' })
    lastSocket().open()
    expect(t.statuses()).toEqual(['connecting', 'error'])
    expect(t.errors()[0]).toMatch(/cannot record audio\/webm;codecs=opus/)
  })
})

describe('SttClient.dispose', () => {
  it('stops the original tracks, closes the AudioContext and the socket, and goes quiet', async () => {
    const { client, socket, media, events } = await recording()
    const before = events.length
    client.dispose()
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(FakeAudioContext.instances[0].state).toBe('closed')
    expect(socket.closeCalls).toEqual([{ code: 1000, reason: undefined }])
    socket.receive({ type: 'final_transcript', transcript: 'late', start: 0, end: 1, speech_final: true })
    expect(events.length).toBe(before)
    await client.start({ url: URL })
    expect(media.getUserMedia.calls).toHaveLength(1)
  })

  it('closes an AudioContext still loading its worklet, and creates no node', async () => {
    const t = setup()
    let open: () => void = () => undefined
    FakeAudioContext.addModuleGate = new Promise<void>((resolve) => (open = resolve))
    const started = t.client.start({ url: URL })
    await flush()
    expect(FakeAudioContext.instances).toHaveLength(1)
    t.client.dispose()
    open()
    await started
    expect(FakeAudioContext.instances[0].state).toBe('closed')
    expect(FakeWorkletNode.instances).toHaveLength(0)
    expect(t.media.streams[0].tracks[0].stopCalls).toBe(1)
  })

  it('releases a microphone granted after dispose', async () => {
    const media = fakeMedia()
    let grant: (stream: MediaStream) => void = () => undefined
    const pending = new Promise<MediaStream>((resolve) => {
      grant = resolve
    })
    media.env.mediaDevices = { getUserMedia: () => pending }
    const client = new SttClient(() => media.env)
    const started = client.start({ url: URL })
    client.dispose()
    const stream = { getTracks: () => [track], getAudioTracks: () => [track] } as unknown as MediaStream
    const track = { stop: vi.fn() }
    grant(stream)
    await started
    await flush()
    expect(track.stop).toHaveBeenCalledTimes(1)
  })
})

describe('helpers', () => {
  it('maps getUserMedia errors', () => {
    expect(microphoneFailure(new DOMException('x', 'SecurityError')).status).toBe('permission_denied')
    expect(microphoneFailure(new DOMException('x', 'OverconstrainedError')).status).toBe('no_microphone')
    expect(microphoneFailure(new Error('odd')).message).toBe('Could not access the microphone: odd')
  })

  it('browserEnvironment reads the globals when called', () => {
    const getUserMedia = vi.fn()
    vi.stubGlobal('navigator', { mediaDevices: { getUserMedia } })
    vi.stubGlobal('AudioContext', FakeAudioContext)
    const env = browserEnvironment()
    expect(env.mediaDevices?.getUserMedia).toBe(getUserMedia)
    expect(env.AudioContext).toBe(FakeAudioContext)
    expect(env.WebSocket).toBe(globalThis.WebSocket)
    // The file next to the module (`new URL('./pcm-worklet.js', import.meta.url)`).
    expect(env.workletUrl).toMatch(/\/client\/src\/pcm-worklet\.js$/)
  })
})

describe('SttClient with a token provider', () => {
  it('offers ["bearer", token] from a fresh token on every start', async () => {
    let n = 0
    const tokenProvider = vi.fn(async () => `vxt_${++n}`)
    const t = setup()
    await t.client.start({ url: URL, tokenProvider })
    expect(lastSocket().protocols).toEqual(['bearer', 'vxt_1'])
    expect(lastSocket().url).toBe(URL) // never in the URL
    lastSocket().open()
    await t.client.stop()
    lastSocket().receive({ type: 'stopped' })
    await t.client.start({ url: URL, tokenProvider })
    expect(lastSocket().protocols).toEqual(['bearer', 'vxt_2'])
    expect(tokenProvider).toHaveBeenCalledTimes(2)
  })

  it('offers no subprotocol without a provider, or when it resolves to null (auth off)', async () => {
    const t = setup()
    await t.client.start({ url: URL })
    expect(lastSocket().protocols).toBeUndefined()
    t.client.dispose()
    const u = setup()
    await u.client.start({ url: URL, tokenProvider: async () => null })
    expect(lastSocket().protocols).toBeUndefined()
  })

  it('a refused key fails the run before the microphone is opened', async () => {
    const t = setup()
    const sockets = FakeWebSocket.instances.length
    await t.client.start({
      url: URL,
      tokenProvider: () => Promise.reject(new TokenError('The gateway key was refused. Enter it again.')),
    })
    expect(t.statuses()).toEqual(['connecting', 'error'])
    expect(t.errors()).toEqual(['The gateway key was refused. Enter it again.'])
    expect(t.media.getUserMedia.calls).toEqual([])
    expect(FakeWebSocket.instances.length).toBe(sockets)
    expect(t.client.status).toBe('error')
  })

  it('keeps the TokenError status (gateway unreachable) and wraps other errors', async () => {
    const t = setup()
    await t.client.start({ url: URL, tokenProvider: () => Promise.reject(new TokenError('down', 'gateway_unreachable')) })
    expect(t.statuses()).toEqual(['connecting', 'gateway_unreachable'])
    await t.client.start({ url: URL, tokenProvider: () => Promise.reject(new Error('boom')) })
    expect(t.errors()).toEqual(['down', 'Could not get a connection token: boom'])
  })

  it('stop while waiting for the token cancels the run; the late token is not used', async () => {
    let give: (token: string) => void = () => undefined
    const t = setup()
    const started = t.client.start({ url: URL, tokenProvider: () => new Promise((resolve) => (give = resolve)) })
    const sockets = FakeWebSocket.instances.length
    await t.client.stop()
    give('vxt_late')
    await started
    expect(t.statuses()).toEqual(['connecting', 'idle'])
    expect(t.media.getUserMedia.calls).toEqual([])
    expect(FakeWebSocket.instances.length).toBe(sockets)
  })
})
