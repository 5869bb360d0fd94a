import { act, fireEvent, render, screen } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import type { SttStatus, SttWarning } from '@voxrelay/client'
import { DictationButton } from './DictationButton'
import { DictationLevelMeter } from './DictationLevelMeter'
import { DictationStatus } from './DictationStatus'
import { dictationShortcut, isDictationShortcut } from './shortcut'

function stt(status: SttStatus, level = 0) {
  return { status, level, start: vi.fn(async () => undefined), stop: vi.fn(async () => undefined) }
}

const press = (init: KeyboardEventInit): void => {
  fireEvent.keyDown(document.activeElement ?? document.body, { key: ' ', code: 'Space', ...init })
}

describe('dictation shortcut', () => {
  it('is Ctrl+Shift+Space, or Cmd+Shift+Space on Apple platforms', () => {
    const base = { key: ' ', code: 'Space', shiftKey: true, altKey: false }
    expect(isDictationShortcut({ ...base, ctrlKey: true, metaKey: false }, false)).toBe(true)
    expect(isDictationShortcut({ ...base, ctrlKey: false, metaKey: true }, false)).toBe(false)
    expect(isDictationShortcut({ ...base, ctrlKey: false, metaKey: true }, true)).toBe(true)
    expect(isDictationShortcut({ ...base, ctrlKey: true, metaKey: false, shiftKey: false }, false)).toBe(false)
    expect(isDictationShortcut({ ...base, ctrlKey: true, metaKey: false, altKey: true }, false)).toBe(false)
    expect(isDictationShortcut({ ...base, key: 'a', code: 'KeyA', ctrlKey: true, metaKey: false }, false)).toBe(false)
    expect(dictationShortcut(false)).toEqual({ aria: 'Control+Shift+Space', label: 'Ctrl+Shift+Space', mac: false })
    expect(dictationShortcut(true).aria).toBe('Meta+Shift+Space')
  })

  it('starts and stops from the keyboard, with focus kept in the text box', () => {
    const idle = stt('idle')
    const onStart = vi.fn()
    const { rerender } = render(
      <>
        <textarea aria-label="Message" />
        <DictationButton stt={idle} onStart={onStart} shortcut />
      </>,
    )
    const box = screen.getByRole('textbox', { name: 'Message' })
    box.focus()
    const button = screen.getByRole('button', { name: 'Start dictation' })
    expect(button).toHaveAttribute('aria-keyshortcuts', 'Control+Shift+Space')
    expect(button).toHaveAttribute('title', 'Start dictation (Ctrl+Shift+Space)')
    press({ ctrlKey: true, shiftKey: true })
    expect(onStart).toHaveBeenCalledOnce()
    expect(idle.start).toHaveBeenCalledOnce()
    expect(box).toHaveFocus()

    const recording = stt('recording')
    rerender(
      <>
        <textarea aria-label="Message" />
        <DictationButton stt={recording} shortcut />
      </>,
    )
    press({ ctrlKey: true, shiftKey: true, repeat: true })
    expect(recording.stop).not.toHaveBeenCalled()
    press({ ctrlKey: true, shiftKey: true })
    expect(recording.stop).toHaveBeenCalledOnce()
    expect(box).toHaveFocus()
  })

  it('does nothing without the prop, or while the button is disabled', () => {
    const s = stt('idle')
    const { rerender } = render(<DictationButton stt={s} />)
    expect(screen.getByRole('button')).not.toHaveAttribute('aria-keyshortcuts')
    press({ ctrlKey: true, shiftKey: true })
    rerender(<DictationButton stt={s} shortcut disabled />)
    press({ ctrlKey: true, shiftKey: true })
    expect(s.start).not.toHaveBeenCalled()
  })
})

describe('DictationLevelMeter', () => {
  it('is a named meter, 0..100, not focusable', () => {
    const { rerender } = render(<DictationLevelMeter level={0} />)
    const meter = screen.getByRole('meter', { name: 'Microphone level' })
    expect(meter).toHaveAttribute('aria-valuemin', '0')
    expect(meter).toHaveAttribute('aria-valuemax', '100')
    expect(meter).toHaveAttribute('aria-valuenow', '0')
    expect(meter).not.toHaveAttribute('tabindex')
    rerender(<DictationLevelMeter level={0.1} />)
    expect(meter).toHaveAttribute('aria-valuenow', '40')
    expect(meter).toHaveAttribute('data-level', '0.100')
    rerender(<DictationLevelMeter level={0.9} />)
    expect(meter).toHaveAttribute('aria-valuenow', '100')
  })
})

describe('DictationStatus', () => {
  const state = (status: SttStatus, error: string | null = null, warning: SttWarning | null = null) => ({
    status,
    error,
    warning,
  })

  it('announces start and stop politely', () => {
    const { rerender } = render(<DictationStatus stt={state('idle')} />)
    const region = screen.getByRole('status')
    expect(region).toHaveAttribute('aria-live', 'polite')
    expect(region).toHaveTextContent('')
    rerender(<DictationStatus stt={state('connecting')} />)
    rerender(<DictationStatus stt={state('recording')} />)
    expect(region).toHaveTextContent('Dictation started.')
    rerender(<DictationStatus stt={state('stopping')} />)
    rerender(<DictationStatus stt={state('idle')} />)
    expect(region).toHaveTextContent('Dictation stopped.')
  })

  it('shows a server warning, and errors as an alert', () => {
    const warning = { code: 'draining', message: 'x', text: 'The server is shutting down.' }
    const { rerender } = render(<DictationStatus stt={state('recording')} />)
    act(() => rerender(<DictationStatus stt={state('recording', null, warning)} />))
    const region = screen.getByRole('status')
    expect(region).toHaveTextContent('The server is shutting down.')
    expect(region).toHaveAttribute('data-warning', 'draining')
    rerender(<DictationStatus stt={state('gateway_unreachable', 'Could not connect.')} />)
    expect(screen.getByRole('alert')).toHaveTextContent('Could not connect.')
    expect(region).toHaveTextContent('')
    rerender(<DictationStatus stt={state('error', 'Boom.')} showError={false} />)
    expect(screen.queryByRole('alert')).toBeNull()
  })
})
