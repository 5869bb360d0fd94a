// @ts-check
/**
 * AudioWorklet module: mono float32 blocks in, linear16 frames out.
 *
 * Loaded with `audioWorklet.addModule(url)` from a separate file next to the client's
 * module (`new URL('./pcm-worklet.js', import.meta.url)`, so a strict CSP's
 * `script-src 'self'` allows it). It imports nothing. The
 * AudioContext runs at the target rate (16 kHz), so the browser has already
 * resampled; this module converts to little-endian int16 and batches the 128-frame
 * render quanta into frames of `frameSamples` (800 = 50 ms at 16 kHz).
 *
 * Messages posted on the node's port:
 *   {type: 'pcm', pcm: ArrayBuffer, level: number}  one frame (transferred), RMS level 0..1
 *   {type: 'flushed'}                                 answer to {type: 'flush'}, after the partial frame
 *
 * `Pcm16Framer` has no AudioWorklet dependency so unit tests can import it.
 */

export const PROCESSOR_NAME = 'voxrelay-pcm16'

/** Batches float32 samples into int16 frames of a fixed size. */
export class Pcm16Framer {
  /** @param {number} frameSamples */
  constructor(frameSamples) {
    if (!Number.isInteger(frameSamples) || frameSamples <= 0) throw new RangeError('frameSamples must be > 0')
    this.frame = new Int16Array(frameSamples)
    this.filled = 0
    this.sumSquares = 0
  }

  /**
   * Add samples; returns the frames completed by them.
   * @param {Float32Array} samples
   * @returns {{pcm: ArrayBuffer, level: number}[]}
   */
  push(samples) {
    /** @type {{pcm: ArrayBuffer, level: number}[]} */
    const out = []
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i] || 0))
      this.frame[this.filled++] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff)
      this.sumSquares += s * s
      if (this.filled === this.frame.length) out.push(this.take())
    }
    return out
  }

  /**
   * The partial frame, if any (used when stopping so the last words are sent).
   * @returns {{pcm: ArrayBuffer, level: number} | null}
   */
  flush() {
    return this.filled > 0 ? this.take() : null
  }

  /** @private */
  take() {
    const n = this.filled
    const pcm = this.frame.slice(0, n).buffer
    const level = Math.sqrt(this.sumSquares / n)
    this.filled = 0
    this.sumSquares = 0
    return { pcm, level }
  }
}

// Registration runs only inside an AudioWorkletGlobalScope (TypeScript's DOM lib does not describe it).
const scope = /** @type {any} */ (globalThis)
if (typeof scope.AudioWorkletProcessor === 'function' && typeof scope.registerProcessor === 'function') {
  class Pcm16CaptureProcessor extends scope.AudioWorkletProcessor {
    /** @param {{processorOptions?: {frameSamples?: number}}} options */
    constructor(options) {
      super()
      this.framer = new Pcm16Framer(options?.processorOptions?.frameSamples ?? 800)
      this.port.onmessage = (/** @type {MessageEvent} */ event) => {
        if (event.data && event.data.type === 'flush') {
          const last = this.framer.flush()
          if (last) this.port.postMessage({ type: 'pcm', ...last }, [last.pcm])
          this.port.postMessage({ type: 'flushed' })
        }
      }
    }

    /** @param {Float32Array[][]} inputs */
    process(inputs) {
      const channel = inputs[0] && inputs[0][0]
      if (channel) {
        for (const frame of this.framer.push(channel)) this.port.postMessage({ type: 'pcm', ...frame }, [frame.pcm])
      }
      return true
    }
  }
  scope.registerProcessor(PROCESSOR_NAME, Pcm16CaptureProcessor)
}
