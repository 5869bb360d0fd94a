/**
 * `SttClient`: microphone capture and the `/stt-stream` WebSocket, with no React.
 *
 * Call order: `subscribe(listener)`, then `start(options)`; later `stop()` (or
 * `start` again after the run ended); `dispose()` when done (it stops everything
 * and silences the listeners). Every outcome is reported as an `SttClientEvent`;
 * `start` and `stop` never reject.
 *
 * A run: get a token from `tokenProvider` (when one is set; a failure ends the run
 * before the microphone is opened) -> ask for the microphone -> open the socket and set up capture together ->
 * once both are ready send `configure`, then the audio buffered so far -> stream
 * -> `stop()`: flush the last audio, release the microphone, send `{"action":"stop"}`
 * and keep the socket until `stopped` arrives (or `stopTimeoutMs`) so the last
 * words land. Every exit path (stop, failure, dispose) stops the captured tracks,
 * closes the AudioContext and closes the socket.
 */

import {
  CloseCode,
  configureMessage,
  describeServerError,
  encodeClientMessage,
  parseServerMessage,
  type AudioFormat,
  type ErrorMessage,
  type StreamOptions,
} from './protocol'
import type { SttClientEvent, SttFailure, SttStatus } from './reducer'
import { TokenError, type TokenProvider } from './auth'

/** `linear16`: AudioWorklet PCM (the default). `webm`: MediaRecorder Opus in WebM. */
export type CaptureMode = 'linear16' | 'webm'

export interface SttStartOptions {
  /** `ws(s)://host/stt-stream` */
  url: string
  mode?: CaptureMode
  /** Recognition options sent in `configure` (interim results and 300 ms endpointing by default). */
  stream?: StreamOptions
  /** PCM frame length per WebSocket message. */
  frameMs?: number
  /** Rate the AudioContext resamples to for PCM. */
  sampleRate?: number
  /** MediaRecorder timeslice for webm. */
  timesliceMs?: number
  /** From creating the socket until it is open. */
  connectTimeoutMs?: number
  /** From sending `stop` until `stopped`. */
  stopTimeoutMs?: number
  /**
   * Called first in every run: a token makes the socket offer `["bearer", token]`;
   * null (or no provider) opens it with no subprotocol.
   */
  tokenProvider?: TokenProvider
}

/** The browser APIs the client uses; tests pass stubs. */
export interface MediaEnvironment {
  mediaDevices?: Pick<MediaDevices, 'getUserMedia'>
  WebSocket: typeof WebSocket
  AudioContext?: typeof AudioContext
  AudioWorkletNode?: typeof AudioWorkletNode
  MediaRecorder?: typeof MediaRecorder
  workletUrl: string
}

/** The name `pcm-worklet.js` registers its processor under (its unit test checks they agree). */
export const PROCESSOR_NAME = 'voxrelay-pcm16'

/**
 * Where the capture worklet is: the file next to this module. `new URL('…', import.meta.url)`
 * is standard ESM that Vite, webpack 5, esbuild/Rollup-based tools and plain browsers all
 * resolve, so the package needs no bundler plugin; the bundlers copy the file as an asset
 * (it must stay a file, not a data:/blob: URL, for a CSP of `script-src 'self'`).
 */
export function defaultWorkletUrl(): string {
  return new URL('./pcm-worklet.js', import.meta.url).href
}

/** The real browser's APIs, looked up when called. */
export function browserEnvironment(): MediaEnvironment {
  const g = globalThis as typeof globalThis & { webkitAudioContext?: typeof AudioContext }
  return {
    mediaDevices: g.navigator?.mediaDevices,
    WebSocket: g.WebSocket,
    AudioContext: g.AudioContext ?? g.webkitAudioContext,
    AudioWorkletNode: g.AudioWorkletNode,
    MediaRecorder: g.MediaRecorder,
    workletUrl: defaultWorkletUrl(),
  }
}

export const WEBM_MIME_TYPE = 'audio/webm;codecs=opus'

const DEFAULTS = {
  mode: 'linear16' as CaptureMode,
  frameMs: 50,
  sampleRate: 16000,
  timesliceMs: 100,
  connectTimeoutMs: 10000,
  stopTimeoutMs: 10000,
}
const FLUSH_TIMEOUT_MS = 500
const LEVEL_INTERVAL_MS = 100
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024

type Phase = 'idle' | 'connecting' | 'recording' | 'stopping' | 'failed'

/** Every legal phase change; anything else is a bug and throws. */
const TRANSITIONS: Record<Phase, readonly Phase[]> = {
  idle: ['connecting'],
  connecting: ['recording', 'idle', 'failed'],
  recording: ['stopping', 'idle', 'failed'],
  stopping: ['idle', 'failed'],
  failed: ['connecting'],
}

type Listener = (event: SttClientEvent) => void
type Timer = ReturnType<typeof setTimeout>

/** Resources of one start..end run; a new `start` gets a new Run, so late callbacks of an old one are ignored. */
class Run {
  stream: MediaStream | null = null
  context: AudioContext | null = null
  source: MediaStreamAudioSourceNode | null = null
  node: AudioWorkletNode | null = null
  recorder: MediaRecorder | null = null
  socket: WebSocket | null = null
  format: AudioFormat | null = null
  opened = false
  configured = false
  stopSent = false
  /** The server ended the session itself (a `draining` warning): no more audio, no `stop`. */
  serverStopping = false
  pending: (ArrayBuffer | Blob)[] = []
  serverError: ErrorMessage | null = null
  /** Capture failed while the socket was still connecting; reported once the socket settles. */
  captureError: string | null = null
  lastLevelAt = 0
  onFlushed: (() => void) | null = null
  readonly timers = new Set<Timer>()

  constructor(
    readonly options: Required<Omit<SttStartOptions, 'stream' | 'tokenProvider'>> & { stream: StreamOptions },
  ) {}
}

class CaptureError extends Error {}

export class SttClient {
  private readonly listeners = new Set<Listener>()
  private phase: Phase = 'idle'
  private run: Run | null = null
  private disposed = false

  constructor(private readonly env: () => MediaEnvironment = browserEnvironment) {}

  // Public methods.

  /** Listen to status, transcript, error and level events; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /** The current status (failures read as `error`; the events carry the precise kind). */
  get status(): SttStatus {
    return this.phase === 'failed' ? 'error' : this.phase
  }

  /**
   * Start a dictation run. Ignored while one is active or after `dispose`.
   * Resolves once audio capture is set up or the run failed; never rejects.
   */
  async start(options: SttStartOptions): Promise<void> {
    if (this.disposed || (this.phase !== 'idle' && this.phase !== 'failed')) return
    const { tokenProvider, ...rest } = options
    const run = new Run({ ...DEFAULTS, stream: {}, ...stripUndefined(rest), url: options.url })
    this.run = run
    this.move('connecting')
    this.emit({ type: 'status', status: 'connecting' })

    // The token first: a refused key never opens the microphone. Tokens are single-use,
    // so every run asks for a fresh one.
    let token: string | null = null
    if (tokenProvider) {
      try {
        token = await tokenProvider()
      } catch (error) {
        const status = error instanceof TokenError ? error.status : 'error'
        const message =
          error instanceof TokenError ? error.message : `Could not get a connection token: ${errorText(error)}`
        return this.fail(run, status, message)
      }
      if (this.run !== run) return
    }

    const env = this.env()
    if (!env.mediaDevices?.getUserMedia) {
      return this.fail(
        run,
        'no_microphone',
        'Microphone access is not available here: open the page over https or from localhost.',
      )
    }
    let stream: MediaStream
    try {
      stream = await env.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        video: false,
      })
    } catch (error) {
      const failure = microphoneFailure(error)
      return this.fail(run, failure.status, failure.message)
    }
    if (this.run !== run) {
      stream.getTracks().forEach((track) => track.stop())
      return
    }
    run.stream = stream
    for (const track of stream.getAudioTracks()) {
      track.addEventListener('ended', () => {
        if (this.run === run && this.phase !== 'stopping') {
          this.fail(run, 'no_microphone', 'The microphone was disconnected.')
        }
      })
    }

    this.openSocket(run, env, token)
    if (this.run !== run) return
    try {
      await this.startCapture(run, env, stream)
    } catch (error) {
      const detail = error instanceof CaptureError ? error.message : `Could not start audio capture: ${errorText(error)}`
      if (this.run !== run) return
      if (run.socket?.readyState === run.socket?.CONNECTING) {
        // A gateway that is down also fails the worklet's fetch: let the socket's outcome
        // decide which error to show (the close explains more than a failed module load).
        run.captureError = detail
        return
      }
      return this.fail(run, 'error', detail)
    }
    this.begin(run)
  }

  /**
   * End the run: while connecting this cancels it; while recording it flushes the
   * last audio, releases the microphone, sends `stop` and waits for `stopped`.
   */
  async stop(): Promise<void> {
    const run = this.run
    if (!run) return
    if (this.phase === 'connecting') {
      this.finish(run)
      return
    }
    if (this.phase !== 'recording') return
    this.move('stopping')
    this.emit({ type: 'status', status: 'stopping' })
    await this.drainCapture(run)
    if (this.run !== run || run.serverStopping) return
    const socket = run.socket
    if (!socket || socket.readyState !== socket.OPEN) {
      this.finish(run)
      return
    }
    socket.send(encodeClientMessage({ action: 'stop' }))
    run.stopSent = true
    this.after(run, run.options.stopTimeoutMs, () =>
      this.fail(run, 'error', 'The gateway did not finish the transcript in time; the last words may be missing.'),
    )
  }

  /** Stop everything (tracks, AudioContext, socket) and drop the listeners. Idempotent. */
  dispose(): void {
    this.disposed = true
    const run = this.run
    this.run = null
    if (run) this.teardown(run)
    this.phase = 'idle'
    this.listeners.clear()
  }

  // Socket.

  private openSocket(run: Run, env: MediaEnvironment, token: string | null): void {
    let socket: WebSocket
    try {
      // The token travels only as a subprotocol (never in the URL); the server answers `bearer`.
      socket = token ? new env.WebSocket(run.options.url, ['bearer', token]) : new env.WebSocket(run.options.url)
    } catch (error) {
      this.fail(run, 'gateway_unreachable', `The gateway address ${run.options.url} is not valid: ${errorText(error)}`)
      return
    }
    socket.binaryType = 'arraybuffer'
    run.socket = socket
    const connectTimer = this.after(run, run.options.connectTimeoutMs, () =>
      this.fail(run, 'gateway_unreachable', `Could not reach the dictation gateway at ${run.options.url} (timed out).`),
    )
    socket.onopen = () => {
      if (this.run !== run) return
      clearTimeout(connectTimer)
      run.timers.delete(connectTimer)
      run.opened = true
      if (run.captureError) this.fail(run, 'error', run.captureError)
      else this.begin(run)
    }
    socket.onmessage = (event: MessageEvent) => {
      if (this.run === run && typeof event.data === 'string') this.onServerText(run, event.data)
    }
    socket.onclose = (event: CloseEvent) => {
      if (this.run === run) this.onSocketClose(run, event)
    }
    // An `error` event is always followed by `close`, which has the details.
    socket.onerror = null
  }

  /** Once the socket is open and the capture format known: configure, then the buffered audio. */
  private begin(run: Run): void {
    const socket = run.socket
    if (this.run !== run || run.configured || !run.opened || !run.format || !socket) return
    socket.send(encodeClientMessage(configureMessage(run.format, run.options.stream)))
    run.configured = true
    for (const chunk of run.pending) socket.send(chunk)
    run.pending = []
    this.move('recording')
    this.emit({ type: 'status', status: 'recording' })
  }

  private onServerText(run: Run, text: string): void {
    const message = parseServerMessage(text)
    if (!message) return
    if (message.type === 'stopped') {
      this.finish(run)
      return
    }
    if (message.type === 'warning' && message.code === 'draining') {
      this.emit({ type: 'server', message })
      this.serverStopping(run)
      return
    }
    if (message.type === 'error') {
      // Frames that were on the way when the server ended the session are refused (`audio
      // after stop`); that is expected, not the person's concern.
      if (run.serverStopping && message.code === 'bad_request') return
      // Fatal errors are followed by a close; the close ends the run with this message.
      run.serverError = message
      this.emit({ type: 'error', status: 'error', message: describeServerError(message), fatal: false })
      return
    }
    this.emit({ type: 'server', message })
  }

  /**
   * The server is draining: it ends the session as if `stop` had been sent and delivers the
   * last finals, then `stopped`. Release the microphone and send no more audio (nor `stop`).
   */
  private serverStopping(run: Run): void {
    run.serverStopping = true
    run.stopSent = true
    run.pending = []
    this.releaseCapture(run)
    this.emit({ type: 'level', level: 0 })
    if (this.phase === 'recording') {
      this.move('stopping')
      this.emit({ type: 'status', status: 'stopping' })
      this.after(run, run.options.stopTimeoutMs, () =>
        this.fail(run, 'error', 'The gateway did not finish the transcript in time; the last words may be missing.'),
      )
    }
  }

  private onSocketClose(run: Run, event: CloseEvent): void {
    if (!run.opened) {
      this.fail(
        run,
        'gateway_unreachable',
        `Could not connect to the dictation gateway at ${run.options.url}. Is \`voxrelay serve\` running?`,
      )
    } else if (run.serverError) {
      this.fail(run, 'error', describeServerError(run.serverError))
    } else if (run.stopSent && event.code === CloseCode.NORMAL) {
      this.finish(run)
    } else {
      const reason = event.reason ? `: ${event.reason}` : ''
      this.fail(run, 'error', `The connection to the dictation gateway closed unexpectedly (code ${event.code}${reason}).`)
    }
  }

  private sendAudio(run: Run, chunk: ArrayBuffer | Blob): void {
    if (this.run !== run || run.stopSent) return
    const socket = run.socket
    if (!run.configured || !socket) {
      run.pending.push(chunk)
      return
    }
    if (socket.readyState !== socket.OPEN) return
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.fail(run, 'error', 'The connection to the dictation gateway is too slow; audio is piling up.')
      return
    }
    socket.send(chunk)
  }

  // Audio capture.

  private async startCapture(run: Run, env: MediaEnvironment, stream: MediaStream): Promise<void> {
    if (run.options.mode === 'webm') this.startRecorder(run, env, stream)
    else await this.startWorklet(run, env, stream)
  }

  private async startWorklet(run: Run, env: MediaEnvironment, stream: MediaStream): Promise<void> {
    const Context = env.AudioContext
    const WorkletNode = env.AudioWorkletNode
    if (!Context || !WorkletNode) throw new CaptureError('This browser cannot process audio (no AudioWorklet support).')
    let context = createContext(Context, run.options.sampleRate)
    run.context = context
    await loadWorklet(context, env.workletUrl)
    // Ended (stop/dispose/failure) while loading: release what was created since the teardown.
    if (this.run !== run) return this.releaseCapture(run)
    let source: MediaStreamAudioSourceNode
    try {
      source = context.createMediaStreamSource(stream)
    } catch {
      // Some browsers cannot resample a microphone into a context of another rate:
      // capture at the device's rate and tell the server that rate instead.
      void context.close().catch(() => undefined)
      context = new Context()
      run.context = context
      await loadWorklet(context, env.workletUrl)
      if (this.run !== run) return this.releaseCapture(run)
      source = context.createMediaStreamSource(stream)
    }
    run.source = source
    const node = new WorkletNode(context, PROCESSOR_NAME, {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: 'explicit',
      channelInterpretation: 'speakers',
      processorOptions: { frameSamples: Math.max(128, Math.round((context.sampleRate * run.options.frameMs) / 1000)) },
    })
    run.node = node
    node.port.onmessage = (event: MessageEvent) => {
      const data = event.data as { type?: string; pcm?: ArrayBuffer; level?: number } | null
      if (data?.type === 'pcm' && data.pcm) {
        this.sendAudio(run, data.pcm)
        this.emitLevel(run, data.level ?? 0)
      } else if (data?.type === 'flushed') {
        run.onFlushed?.()
      }
    }
    source.connect(node)
    if (context.state === 'suspended') void context.resume().catch(() => undefined)
    run.format = { encoding: 'linear16', sample_rate: context.sampleRate, channels: 1 }
  }

  private startRecorder(run: Run, env: MediaEnvironment, stream: MediaStream): void {
    const Recorder = env.MediaRecorder
    if (!Recorder || !Recorder.isTypeSupported(WEBM_MIME_TYPE)) {
      throw new CaptureError(`This browser cannot record ${WEBM_MIME_TYPE}; use the PCM (linear16) mode.`)
    }
    const recorder = new Recorder(stream, { mimeType: WEBM_MIME_TYPE, audioBitsPerSecond: 32000 })
    run.recorder = recorder
    // Only the first chunk carries the WebM header: chunks are sent (or buffered) strictly in order.
    recorder.ondataavailable = (event: BlobEvent) => {
      if (event.data.size > 0) this.sendAudio(run, event.data)
    }
    recorder.onerror = () => {
      if (this.run === run) this.fail(run, 'error', 'The browser stopped recording audio.')
    }
    recorder.start(run.options.timesliceMs)
    run.format = { encoding: 'webm' }
  }

  /** Get the last buffered audio out (worklet partial frame, recorder's last chunk), then release the mic. */
  private async drainCapture(run: Run): Promise<void> {
    const { node, recorder } = run
    if (node) {
      await new Promise<void>((resolve) => {
        const timer = this.after(run, FLUSH_TIMEOUT_MS, resolve)
        run.onFlushed = () => {
          clearTimeout(timer)
          run.timers.delete(timer)
          resolve()
        }
        node.port.postMessage({ type: 'flush' })
      })
    }
    if (recorder && recorder.state !== 'inactive') {
      await new Promise<void>((resolve) => {
        const timer = this.after(run, FLUSH_TIMEOUT_MS, resolve)
        recorder.addEventListener(
          'stop',
          () => {
            clearTimeout(timer)
            run.timers.delete(timer)
            resolve()
          },
          { once: true },
        )
        recorder.stop()
      })
    }
    this.releaseCapture(run)
  }

  private emitLevel(run: Run, level: number): void {
    const now = Date.now()
    if (now - run.lastLevelAt < LEVEL_INTERVAL_MS) return
    run.lastLevelAt = now
    this.emit({ type: 'level', level })
  }

  // Endings: every path goes through teardown.

  /** The run ended normally: release everything, back to idle. */
  private finish(run: Run): void {
    if (this.run !== run) return
    this.run = null
    this.teardown(run)
    this.move('idle')
    this.emit({ type: 'level', level: 0 })
    this.emit({ type: 'status', status: 'idle' })
  }

  /** The run failed: release everything, report `status` with a message for people. */
  private fail(run: Run, status: SttFailure, message: string): void {
    if (this.run !== run) return
    this.run = null
    this.teardown(run)
    this.move('failed')
    this.emit({ type: 'level', level: 0 })
    this.emit({ type: 'error', status, message, fatal: true })
  }

  private teardown(run: Run): void {
    run.timers.forEach((timer) => clearTimeout(timer))
    run.timers.clear()
    run.onFlushed = null
    run.pending = []
    this.releaseCapture(run)
    const socket = run.socket
    run.socket = null
    if (socket) {
      socket.onopen = null
      socket.onmessage = null
      socket.onclose = null
      socket.onerror = null
      if (socket.readyState === socket.CONNECTING || socket.readyState === socket.OPEN) {
        try {
          socket.close(CloseCode.NORMAL)
        } catch {
          // Already closing.
        }
      }
    }
  }

  /** Stop the captured tracks (the originals, not clones), the recorder and the AudioContext. */
  private releaseCapture(run: Run): void {
    const { node, source, recorder, stream, context } = run
    run.node = null
    run.source = null
    run.recorder = null
    run.stream = null
    run.context = null
    if (node) {
      node.port.onmessage = null
      safely(() => node.disconnect())
    }
    if (source) safely(() => source.disconnect())
    if (recorder) {
      recorder.ondataavailable = null
      recorder.onerror = null
      if (recorder.state !== 'inactive') safely(() => recorder.stop())
    }
    stream?.getTracks().forEach((track) => track.stop())
    if (context && context.state !== 'closed') void context.close().catch(() => undefined)
  }

  // Helpers.

  private after(run: Run, ms: number, callback: () => void): Timer {
    const timer = setTimeout(() => {
      run.timers.delete(timer)
      callback()
    }, ms)
    run.timers.add(timer)
    return timer
  }

  private move(next: Phase): void {
    if (!TRANSITIONS[this.phase].includes(next)) {
      throw new Error(`SttClient cannot go from ${this.phase} to ${next}`)
    }
    this.phase = next
  }

  private emit(event: SttClientEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event)
      } catch (error) {
        console.error('SttClient listener failed', error)
      }
    }
  }
}

function createContext(Context: typeof AudioContext, sampleRate: number): AudioContext {
  try {
    return new Context({ sampleRate, latencyHint: 'interactive' })
  } catch {
    return new Context()
  }
}

async function loadWorklet(context: AudioContext, url: string): Promise<void> {
  try {
    await context.audioWorklet.addModule(url)
  } catch (error) {
    throw new CaptureError(`Could not load the audio processor (${url}): ${errorText(error)}`)
  }
}

/** A status and a sentence for people from a getUserMedia rejection. */
export function microphoneFailure(error: unknown): { status: SttFailure; message: string } {
  const name = (error as { name?: string } | null)?.name ?? ''
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return {
        status: 'permission_denied',
        message: 'Microphone permission was denied. Allow microphone access for this app and try again.',
      }
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return { status: 'no_microphone', message: 'No microphone was found. Connect one and try again.' }
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return {
        status: 'error',
        message: 'The microphone could not be started; another application may be using it.',
      }
    default:
      return { status: 'error', message: `Could not access the microphone: ${errorText(error)}` }
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name
  return String(error)
}

function safely(action: () => void): void {
  try {
    action()
  } catch {
    // Releasing something already released.
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
