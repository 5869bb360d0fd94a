import { describe, expect, it } from 'vitest'
import { PROCESSOR_NAME as CLIENT_PROCESSOR_NAME } from './client'
import { Pcm16Framer, PROCESSOR_NAME } from './pcm-worklet.js'

const samples = (frame: ArrayBuffer): number[] => Array.from(new Int16Array(frame))

describe('Pcm16Framer', () => {
  it('names the processor', () => {
    expect(PROCESSOR_NAME).toBe('voxrelay-pcm16')
    // The worklet is loaded on its own (it cannot import): the client keeps its own copy of the name.
    expect(CLIENT_PROCESSOR_NAME).toBe(PROCESSOR_NAME)
  })

  it('converts float samples to clamped little-endian int16', () => {
    const framer = new Pcm16Framer(5)
    const [frame] = framer.push(new Float32Array([0, 1, -1, 0.5, 2]))
    expect(samples(frame.pcm)).toEqual([0, 32767, -32768, 16384, 32767])
    expect(new Uint8Array(frame.pcm).slice(2, 4)).toEqual(new Uint8Array([0xff, 0x7f]))
  })

  it('batches 128-sample render quanta into fixed frames (800 = 50 ms at 16 kHz)', () => {
    const framer = new Pcm16Framer(800)
    const frames = []
    for (let i = 0; i < 13; i++) frames.push(...framer.push(new Float32Array(128).fill(0.25)))
    // 13 * 128 = 1664 samples: two full frames, 64 left over.
    expect(frames).toHaveLength(2)
    expect(frames.every((f) => f.pcm.byteLength === 1600)).toBe(true)
    expect(frames[0].level).toBeCloseTo(0.25, 5)
    const rest = framer.flush()
    expect(rest && rest.pcm.byteLength).toBe(128)
    expect(framer.flush()).toBeNull()
  })

  it('reports zero level for silence', () => {
    const framer = new Pcm16Framer(4)
    expect(framer.push(new Float32Array(4))[0].level).toBe(0)
  })

  it('rejects a bad frame size', () => {
    expect(() => new Pcm16Framer(0)).toThrow(RangeError)
  })
})
