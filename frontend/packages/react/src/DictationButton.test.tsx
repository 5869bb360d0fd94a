import { fireEvent, render, screen } from '@testing-library/react'
import { describe, expect, it, vi } from 'vitest'
import type { SttStatus } from '@voxrelay/client'
import { DictationButton, dictationButtonState } from './DictationButton'

function stt(status: SttStatus, level = 0) {
  return { status, level, start: vi.fn(async () => undefined), stop: vi.fn(async () => undefined) }
}

describe('DictationButton', () => {
  it('is a named, unpressed button that starts a dictation', () => {
    const s = stt('idle')
    const onStart = vi.fn()
    render(<DictationButton stt={s} onStart={onStart} />)
    const button = screen.getByRole('button', { name: 'Start dictation' })
    expect(button).toHaveAttribute('type', 'button')
    expect(button).toHaveAttribute('aria-pressed', 'false')
    expect(button).toHaveAttribute('data-state', 'idle')
    fireEvent.click(button)
    expect(onStart).toHaveBeenCalledOnce()
    expect(s.start).toHaveBeenCalledOnce()
    expect(s.stop).not.toHaveBeenCalled()
  })

  it('is pressed while recording, shows the level, and stops', () => {
    const s = stt('recording', 0.1)
    render(<DictationButton stt={s} />)
    const button = screen.getByRole('button', { name: 'Stop dictation', pressed: true })
    expect(button.querySelector('[data-level]')).toHaveAttribute('data-level', '0.100')
    fireEvent.click(button)
    expect(s.stop).toHaveBeenCalledOnce()
    expect(s.start).not.toHaveBeenCalled()
  })

  it('cancels while connecting, is disabled while finishing', () => {
    const connecting = stt('connecting')
    const { rerender } = render(<DictationButton stt={connecting} />)
    expect(screen.getByRole('button', { name: 'Cancel dictation' })).toHaveAttribute('aria-busy', 'true')
    fireEvent.click(screen.getByRole('button'))
    expect(connecting.stop).toHaveBeenCalledOnce()
    rerender(<DictationButton stt={stt('stopping')} />)
    expect(screen.getByRole('button', { name: 'Finishing dictation' })).toBeDisabled()
  })

  it('starts again after a failure, and draws custom content', () => {
    const s = stt('gateway_unreachable')
    render(<DictationButton stt={s}>{({ state }) => <i>{state}</i>}</DictationButton>)
    const button = screen.getByRole('button', { name: 'Start dictation' })
    expect(button).toHaveAttribute('data-state', 'error')
    expect(button).toHaveTextContent('error')
    fireEvent.click(button)
    expect(s.start).toHaveBeenCalledOnce()
  })

  it('maps every status to a coarse state', () => {
    expect(dictationButtonState('stopping')).toBe('connecting')
    expect(dictationButtonState('permission_denied')).toBe('error')
  })
})
