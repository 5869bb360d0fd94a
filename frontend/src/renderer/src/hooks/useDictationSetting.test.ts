import { act, renderHook } from '@testing-library/react'
import { describe, expect, it } from 'vitest'
import { DICTATION_STORAGE_ITEM, useDictationSetting } from './useDictationSetting'

describe('useDictationSetting', () => {
  it('is off by default and saves "on"/"off"', () => {
    const { result } = renderHook(() => useDictationSetting())
    expect(result.current[0]).toBe(false)
    act(() => result.current[1](true))
    expect(result.current[0]).toBe(true)
    expect(localStorage.getItem(DICTATION_STORAGE_ITEM)).toBe('on')
    act(() => result.current[1](false))
    expect(localStorage.getItem(DICTATION_STORAGE_ITEM)).toBe('off')
  })

  it('reads only "on" as on', () => {
    localStorage.setItem(DICTATION_STORAGE_ITEM, 'yes please')
    expect(renderHook(() => useDictationSetting()).result.current[0]).toBe(false)
    localStorage.setItem(DICTATION_STORAGE_ITEM, 'on')
    expect(renderHook(() => useDictationSetting()).result.current[0]).toBe(true)
  })

  it('follows a change made in another tab', () => {
    const { result } = renderHook(() => useDictationSetting())
    localStorage.setItem(DICTATION_STORAGE_ITEM, 'on')
    act(() => {
      window.dispatchEvent(new StorageEvent('storage', { key: DICTATION_STORAGE_ITEM, newValue: 'on' }))
    })
    expect(result.current[0]).toBe(true)
  })

  it('still works for the page when storage is unavailable or throws', () => {
    const none = renderHook(() => useDictationSetting(null))
    act(() => none.result.current[1](true))
    expect(none.result.current[0]).toBe(true)

    const broken = {
      getItem: () => {
        throw new Error('denied')
      },
      setItem: () => {
        throw new Error('quota')
      },
    } as unknown as Storage
    const throwing = renderHook(() => useDictationSetting(broken))
    expect(throwing.result.current[0]).toBe(false)
    act(() => throwing.result.current[1](true))
    expect(throwing.result.current[0]).toBe(true)
  })
})
