/**
 * Stand-ins for the browser media APIs jsdom lacks (getUserMedia, AudioContext,
 * AudioWorkletNode, MediaRecorder) and a scriptable WebSocket. Each fake records
 * what the code under test did, so tests can assert on the original objects.
 */

import type { MediaEnvironment } from '../src/client'

export class FakeTrack {
  readyState: 'live' | 'ended' = 'live'
  stopCalls = 0
  private readonly listeners = new Map<string, Set<() => void>>()

  stop(): void {
    this.stopCalls++
    this.readyState = 'ended'
  }

  addEventListener(type: string, listener: () => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set())
    this.listeners.get(type)!.add(listener)
  }

  removeEventListener(type: string, listener: () => void): void {
    this.listeners.get(type)?.delete(listener)
  }

  /** The device went away. */
  end(): void {
    this.readyState = 'ended'
    this.listeners.get('ended')?.forEach((listener) => listener())
  }
}

export class FakeStream {
  readonly tracks = [new FakeTrack()]
  getTracks(): FakeTrack[] {
    return this.tracks
  }
  getAudioTracks(): FakeTrack[] {
    return this.tracks
  }
}

export class FakePort {
  onmessage: ((event: MessageEvent) => void) | null = null
  readonly posted: unknown[] = []
  /** Answer `flush` like the real worklet: the partial frame, then `flushed`. */
  flushReply: ArrayBuffer | null = new Int16Array([7, 7]).buffer
  autoFlush = true

  postMessage(message: unknown): void {
    this.posted.push(message)
    if (this.autoFlush && (message as { type?: string }).type === 'flush') {
      queueMicrotask(() => {
        if (this.flushReply) this.deliver({ type: 'pcm', pcm: this.flushReply, level: 0.1 })
        this.deliver({ type: 'flushed' })
      })
    }
  }

  /** A message from the worklet to the main thread. */
  deliver(data: unknown): void {
    this.onmessage?.({ data } as MessageEvent)
  }
}

export class FakeWorkletNode {
  static instances: FakeWorkletNode[] = []
  readonly port = new FakePort()
  disconnected = false
  constructor(
    readonly context: FakeAudioContext,
    readonly name: string,
    readonly options: AudioWorkletNodeOptions,
  ) {
    FakeWorkletNode.instances.push(this)
  }
  disconnect(): void {
    this.disconnected = true
  }
  /** One PCM frame from the worklet. */
  emitPcm(samples: number[], level = 0.2): ArrayBuffer {
    const pcm = new Int16Array(samples).buffer
    this.port.deliver({ type: 'pcm', pcm, level })
    return pcm
  }
}

export class FakeAudioContext {
  static instances: FakeAudioContext[] = []
  static failAddModule: Error | null = null
  /** While set, addModule waits for it (to test what happens meanwhile). */
  static addModuleGate: Promise<void> | null = null
  state: 'running' | 'suspended' | 'closed' = 'running'
  readonly sampleRate: number
  readonly modules: string[] = []
  readonly sources: { stream: unknown; connectedTo: unknown[]; disconnected: boolean }[] = []
  closeCalls = 0
  readonly audioWorklet = {
    addModule: async (url: string): Promise<void> => {
      if (FakeAudioContext.addModuleGate) await FakeAudioContext.addModuleGate
      if (FakeAudioContext.failAddModule) throw FakeAudioContext.failAddModule
      this.modules.push(url)
    },
  }

  constructor(options?: AudioContextOptions) {
    this.sampleRate = options?.sampleRate ?? 48000
    FakeAudioContext.instances.push(this)
  }

  createMediaStreamSource(stream: unknown): unknown {
    const source = {
      stream,
      connectedTo: [] as unknown[],
      disconnected: false,
      connect(node: unknown) {
        source.connectedTo.push(node)
      },
      disconnect() {
        source.disconnected = true
      },
    }
    this.sources.push(source)
    return source
  }

  async resume(): Promise<void> {
    this.state = 'running'
  }

  async close(): Promise<void> {
    this.closeCalls++
    this.state = 'closed'
  }
}

export class FakeMediaRecorder {
  static instances: FakeMediaRecorder[] = []
  static supported = true
  static isTypeSupported(type: string): boolean {
    return FakeMediaRecorder.supported && type === 'audio/webm;codecs=opus'
  }
  state: 'inactive' | 'recording' = 'inactive'
  timeslice: number | undefined
  ondataavailable: ((event: BlobEvent) => void) | null = null
  onerror: (() => void) | null = null
  private readonly stopListeners: (() => void)[] = []
  chunkIndex = 0

  constructor(
    readonly stream: FakeStream,
    readonly options: MediaRecorderOptions,
  ) {
    FakeMediaRecorder.instances.push(this)
  }

  start(timeslice?: number): void {
    this.state = 'recording'
    this.timeslice = timeslice
  }

  /** One timeslice of encoded audio. */
  emitChunk(text = `chunk-${this.chunkIndex++}`): Blob {
    const data = new Blob([text], { type: 'audio/webm' })
    this.ondataavailable?.({ data } as BlobEvent)
    return data
  }

  addEventListener(type: string, listener: () => void): void {
    if (type === 'stop') this.stopListeners.push(listener)
  }

  stop(): void {
    if (this.state === 'inactive') return
    this.state = 'inactive'
    queueMicrotask(() => {
      this.emitChunk('last-chunk')
      this.stopListeners.splice(0).forEach((listener) => listener())
    })
  }
}

export class FakeWebSocket {
  static readonly CONNECTING = 0
  static readonly OPEN = 1
  static readonly CLOSING = 2
  static readonly CLOSED = 3
  readonly CONNECTING = 0
  readonly OPEN = 1
  readonly CLOSING = 2
  readonly CLOSED = 3
  static instances: FakeWebSocket[] = []

  readyState = 0
  binaryType = 'blob'
  bufferedAmount = 0
  readonly sent: (string | ArrayBuffer | Blob)[] = []
  closeCalls: { code?: number; reason?: string }[] = []
  onopen: ((event: Event) => void) | null = null
  onmessage: ((event: MessageEvent) => void) | null = null
  onclose: ((event: CloseEvent) => void) | null = null
  onerror: ((event: Event) => void) | null = null

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this)
  }

  send(data: string | ArrayBuffer | Blob): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: socket is not open')
    this.sent.push(data)
  }

  close(code?: number, reason?: string): void {
    this.closeCalls.push({ code, reason })
    this.readyState = 3
  }

  // Test helpers: what the server (or the network) does.

  open(): void {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }

  receive(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent)
  }

  serverClose(code = 1000, reason = ''): void {
    this.readyState = 3
    this.onclose?.({ code, reason, wasClean: code === 1000 } as CloseEvent)
  }

  /** The connection could not be made (what browsers report as 1006). */
  refuse(): void {
    this.readyState = 3
    this.onerror?.(new Event('error'))
    this.onclose?.({ code: 1006, reason: '', wasClean: false } as CloseEvent)
  }

  /** Text frames sent, parsed. */
  get textFrames(): Record<string, unknown>[] {
    return this.sent.filter((x): x is string => typeof x === 'string').map((x) => JSON.parse(x) as Record<string, unknown>)
  }
}

export interface FakeMedia {
  env: MediaEnvironment
  getUserMedia: ReturnType<typeof makeGetUserMedia>
  streams: FakeStream[]
}

function makeGetUserMedia(streams: FakeStream[], failWith: () => Error | null) {
  const calls: MediaStreamConstraints[] = []
  const fn = async (constraints: MediaStreamConstraints): Promise<MediaStream> => {
    calls.push(constraints)
    const error = failWith()
    if (error) throw error
    const stream = new FakeStream()
    streams.push(stream)
    return stream as unknown as MediaStream
  }
  return Object.assign(fn, { calls })
}

/** A fresh fake environment; `failMic` makes getUserMedia reject with that DOMException name. */
export function fakeMedia(options: { failMic?: string } = {}): FakeMedia {
  FakeWebSocket.instances = []
  FakeAudioContext.instances = []
  FakeAudioContext.failAddModule = null
  FakeAudioContext.addModuleGate = null
  FakeWorkletNode.instances = []
  FakeMediaRecorder.instances = []
  FakeMediaRecorder.supported = true
  const streams: FakeStream[] = []
  const getUserMedia = makeGetUserMedia(streams, () =>
    options.failMic ? new DOMException('fake failure', options.failMic) : null,
  )
  const env: MediaEnvironment = {
    mediaDevices: { getUserMedia },
    WebSocket: FakeWebSocket as unknown as typeof WebSocket,
    AudioContext: FakeAudioContext as unknown as typeof AudioContext,
    AudioWorkletNode: FakeWorkletNode as unknown as typeof AudioWorkletNode,
    MediaRecorder: FakeMediaRecorder as unknown as typeof MediaRecorder,
    workletUrl: '/assets/pcm-worklet.js',
  }
  return { env, getUserMedia, streams }
}

/** Let pending promises and microtasks run. */
export async function flush(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve()
}

export const lastSocket = (): FakeWebSocket => {
  const socket = FakeWebSocket.instances.at(-1)
  if (!socket) throw new Error('no WebSocket was created')
  return socket
}
