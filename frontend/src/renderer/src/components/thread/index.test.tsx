import { act, fireEvent, render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { describe, expect, it, vi } from 'vitest'
import { fakeMedia, lastSocket, type FakeMedia } from '../../../../../packages/client/test/fakes'
import { GatewayKeyAuth, KEY_STORAGE_ITEM } from '@voxrelay/client'
import { DICTATION_STORAGE_ITEM } from '../../hooks/useDictationSetting'
import { Thread, type ThreadProps } from '.'

const URL = 'ws://gateway.test/stt-stream'

function renderThread(props: Partial<ThreadProps> = {}, media: FakeMedia = fakeMedia()) {
  const utils = render(<Thread sttUrl={URL} sttAvailable sttEnvironment={() => media.env} {...props} />)
  const textarea = () => screen.getByRole('textbox', { name: 'Message' }) as HTMLTextAreaElement
  const mic = () => screen.getByRole('button', { name: /dictation/ })
  return { ...utils, media, textarea, mic }
}

const final = (transcript: string) => ({ type: 'final_transcript', transcript, start: 0, end: 1, speech_final: true })

describe('Thread', () => {
  it('renders the message box, the mic (idle) and send', () => {
    const { textarea, mic } = renderThread()
    expect(textarea()).toHaveValue('')
    expect(mic()).toHaveAccessibleName('Start dictation')
    expect(mic()).toHaveAttribute('data-state', 'idle')
    expect(mic()).toBeEnabled()
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled()
  })

  it('sends a typed message: appended to the thread, input cleared', async () => {
    const user = userEvent.setup()
    const { textarea } = renderThread()
    await user.type(textarea(), 'Hello there')
    await user.click(screen.getByRole('button', { name: 'Send message' }))
    expect(screen.getByRole('log')).toHaveTextContent('Hello there')
    expect(textarea()).toHaveValue('')
  })

  it('sets isLoading while onSubmit runs: mic and send disabled, reply appended', async () => {
    let finish: (reply: string) => void = () => undefined
    const onSubmit = vi.fn(() => new Promise<string>((resolve) => (finish = resolve)))
    const user = userEvent.setup()
    const { textarea, mic } = renderThread({ onSubmit })
    await user.type(textarea(), 'question{Enter}')
    expect(onSubmit).toHaveBeenCalledWith('question')
    expect(mic()).toBeDisabled()
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled()
    await act(async () => finish('answer'))
    expect(mic()).toBeEnabled()
    expect(screen.getByRole('log')).toHaveTextContent('answer')
  })

  it('shows a failing onSubmit in an alert', async () => {
    const user = userEvent.setup()
    const { textarea } = renderThread({ onSubmit: () => Promise.reject(new Error('offline')) })
    await user.type(textarea(), 'hi{Enter}')
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not send the message: offline')
  })

  it('is disabled with an explanation when STT is unavailable', () => {
    const { mic } = renderThread({ sttAvailable: false, sttUnavailableReason: 'the gateway at x:1 is not reachable' })
    expect(mic()).toBeDisabled()
    expect(mic()).toHaveAttribute('title', 'Dictation is unavailable: the gateway at x:1 is not reachable')
  })

  it('is disabled while the health check has not answered', () => {
    const { mic } = renderThread({ sttAvailable: null })
    expect(mic()).toBeDisabled()
    expect(mic()).toHaveAttribute('title', 'Checking the speech gateway…')
  })

  it('dictates: idle -> connecting -> recording -> idle, keeping the typed text', async () => {
    const user = userEvent.setup()
    const { textarea, mic, media } = renderThread()
    await user.type(textarea(), 'Note:')
    await user.click(mic())
    expect(mic()).toHaveAttribute('data-state', 'connecting')
    expect(mic()).toHaveAccessibleName('Cancel dictation')
    const socket = lastSocket()
    act(() => socket.open())
    expect(mic()).toHaveAttribute('data-state', 'recording')
    expect(mic()).toHaveAccessibleName('Stop dictation')
    expect(mic()).toHaveAttribute('aria-pressed', 'true')

    act(() => socket.receive({ type: 'interim_transcript', transcript: 'buy' }))
    expect(textarea()).toHaveValue('Note: buy')
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'buy milk' }))
    expect(textarea()).toHaveValue('Note: buy milk')
    act(() => socket.receive(final('Buy milk.')))
    expect(textarea()).toHaveValue('Note: Buy milk.')
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'and' }))
    // The interim follows the final's rules: a capital after the sentence end.
    expect(textarea()).toHaveValue('Note: Buy milk. And')

    await user.click(mic())
    expect(mic()).toHaveAttribute('data-status', 'stopping')
    expect(mic()).toBeDisabled()
    expect(socket.textFrames.at(-1)).toEqual({ action: 'stop' })
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    act(() => socket.receive(final('And eggs.')))
    act(() => socket.receive({ type: 'stopped' }))
    expect(mic()).toHaveAttribute('data-state', 'idle')
    expect(mic()).toHaveAccessibleName('Start dictation')
    expect(textarea()).toHaveValue('Note: Buy milk. And eggs.')

    // The dictated text is now ordinary input.
    await user.type(textarea(), ' Thanks')
    expect(textarea()).toHaveValue('Note: Buy milk. And eggs. Thanks')
    // A second dictation starts from it.
    await user.click(mic())
    const second = lastSocket()
    act(() => second.open())
    act(() => second.receive(final('Bye.')))
    expect(textarea()).toHaveValue('Note: Buy milk. And eggs. Thanks Bye.')
  })

  it('keeps what the person types during dictation', async () => {
    const { textarea, mic } = renderThread()
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    act(() => socket.receive(final('Hello.')))
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'how are' }))
    expect(textarea()).toHaveValue('Hello. How are')
    // The person fixes the first word while the interim is showing.
    fireEvent.change(textarea(), { target: { value: 'Hi. How are' } })
    expect(textarea()).toHaveValue('Hi. How are')
    act(() => socket.receive(final('How are you?')))
    expect(textarea()).toHaveValue('Hi. How are you?')
    fireEvent.change(textarea(), { target: { value: 'Hi. How are you? (typed)' } })
    act(() => socket.receive(final('Fine.')))
    expect(textarea()).toHaveValue('Hi. How are you? (typed) Fine.')
    fireEvent.click(mic())
    await act(async () => undefined)
    act(() => socket.receive({ type: 'stopped' }))
    expect(textarea()).toHaveValue('Hi. How are you? (typed) Fine.')
  })

  it('dictates at the caret, replacing the selection, and the caret follows the words', async () => {
    const user = userEvent.setup()
    const { textarea } = renderThread()
    await user.type(textarea(), 'Buy red apples')
    textarea().setSelectionRange(4, 7) // "red"
    // The shortcut starts dictation; focus stays in the box.
    fireEvent.keyDown(textarea(), { key: ' ', code: 'Space', ctrlKey: true, shiftKey: true })
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    expect(textarea()).toHaveFocus()
    expect(screen.getByRole('status')).toHaveTextContent('Dictation started.')
    expect(screen.getByRole('meter', { name: 'Microphone level' })).toBeVisible()
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'gree' }))
    expect(textarea()).toHaveValue('Buy gree apples')
    act(() => socket.receive(final('green')))
    expect(textarea()).toHaveValue('Buy green apples')
    expect(textarea().selectionStart).toBe('Buy green'.length)
    // The person moves the caret to the end; the next words go there.
    textarea().setSelectionRange(16, 16)
    fireEvent.keyUp(textarea(), { key: 'End' })
    act(() => socket.receive(final('and pears.')))
    expect(textarea()).toHaveValue('Buy green apples and pears.')
    act(() => socket.receive({ type: 'warning', code: 'draining', message: 'the server is shutting down' }))
    expect(screen.getByRole('status')).toHaveTextContent('The dictation server is shutting down')
    fireEvent.keyDown(textarea(), { key: ' ', code: 'Space', ctrlKey: true, shiftKey: true })
    await act(async () => undefined)
    act(() => socket.receive({ type: 'stopped' }))
    expect(textarea()).toHaveValue('Buy green apples and pears.')
    expect(textarea()).toHaveFocus()
    expect(screen.getByRole('status')).toHaveTextContent('Dictation stopped.')
    expect(screen.queryByRole('meter')).toBeNull()
  })

  it('keeps a selection the person makes during a dictation on the same text as words arrive', async () => {
    const user = userEvent.setup()
    const { textarea } = renderThread()
    await user.type(textarea(), 'Alpha omega')
    textarea().setSelectionRange(5, 5)
    fireEvent.keyDown(textarea(), { key: ' ', code: 'Space', ctrlKey: true, shiftKey: true })
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'be' }))
    expect(textarea()).toHaveValue('Alpha be omega')
    // The person selects "omega" (after the insertion point) and "Alpha" in turn.
    textarea().setSelectionRange(9, 14)
    fireEvent.mouseUp(textarea())
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'beta' }))
    expect(textarea()).toHaveValue('Alpha beta omega')
    expect([textarea().selectionStart, textarea().selectionEnd]).toEqual([11, 16])
    textarea().setSelectionRange(0, 5)
    fireEvent.mouseUp(textarea())
    act(() => socket.receive(final('beta gamma')))
    expect(textarea()).toHaveValue('Alpha beta gamma omega')
    expect([textarea().selectionStart, textarea().selectionEnd]).toEqual([0, 5])
    // A plain click puts the caret back in charge: the next words go there.
    textarea().setSelectionRange(22, 22)
    fireEvent.mouseUp(textarea())
    act(() => socket.receive(final('delta')))
    expect(textarea()).toHaveValue('Alpha beta gamma omega delta')
    expect(textarea().selectionStart).toBe(28)
  })

  it('shows dictated line breaks as real line breaks, through stop and into the sent message', async () => {
    const onSubmit = vi.fn()
    const { textarea, mic } = renderThread({ onSubmit })
    fireEvent.change(textarea(), { target: { value: 'To: team\n' } })
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    // Spoken punctuation: each command can arrive as its own final.
    act(() => socket.receive(final('dear Maria')))
    act(() => socket.receive(final(',')))
    act(() => socket.receive(final('\n\n')))
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'thanks for' }))
    expect(textarea()).toHaveValue('To: team\nDear Maria,\n\nThanks for')
    act(() => socket.receive(final('thanks for the notes!\n')))
    act(() => socket.receive(final('\nBest')))
    expect(textarea()).toHaveValue('To: team\nDear Maria,\n\nThanks for the notes!\n\nBest')
    expect(textarea().value.split('\n')).toHaveLength(6)
    fireEvent.click(mic())
    await act(async () => undefined)
    act(() => socket.receive(final(',')))
    act(() => socket.receive({ type: 'stopped' }))
    expect(mic()).toHaveAttribute('data-state', 'idle')
    const letter = 'To: team\nDear Maria,\n\nThanks for the notes!\n\nBest,'
    expect(textarea()).toHaveValue(letter)
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Send message' })))
    expect(onSubmit).toHaveBeenCalledWith(letter)
    // The message list keeps the line breaks too (white-space: pre-wrap in CSS).
    expect(screen.getByRole('log').querySelector('.thread-message-user')?.textContent).toBe(letter)
  })

  it('scrolls the message box to the end as dictated text arrives', async () => {
    const { textarea, mic } = renderThread()
    const box = textarea()
    let scrollTop = 0
    Object.defineProperty(box, 'scrollHeight', { configurable: true, get: () => 40 * box.value.split('\n').length })
    Object.defineProperty(box, 'scrollTop', {
      configurable: true,
      get: () => scrollTop,
      set: (value: number) => (scrollTop = value),
    })
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    act(() => socket.receive(final('One.\n\nTwo.\n\nThree.')))
    expect(scrollTop).toBe(200)
  })

  it('shows a gateway failure in an alert and returns to a clickable error state', async () => {
    const onSttError = vi.fn()
    const { textarea, mic } = renderThread({ onSttError })
    fireEvent.change(textarea(), { target: { value: 'draft' } })
    fireEvent.click(mic())
    await act(async () => undefined)
    act(() => lastSocket().refuse())
    expect(screen.getByRole('alert')).toHaveTextContent(/Could not connect to the dictation gateway/)
    expect(mic()).toHaveAttribute('data-state', 'error')
    expect(mic()).toHaveAttribute('data-status', 'gateway_unreachable')
    expect(mic()).toHaveAccessibleName('Start dictation')
    expect(mic()).toBeEnabled()
    expect(textarea()).toHaveValue('draft')
    expect(onSttError).toHaveBeenCalledWith(expect.stringMatching(/Could not connect/))
  })

  it('shows a microphone permission error', async () => {
    const { mic } = renderThread({}, fakeMedia({ failMic: 'NotAllowedError' }))
    fireEvent.click(mic())
    expect(await screen.findByRole('alert')).toHaveTextContent(/Microphone permission was denied/)
    expect(mic()).toHaveAttribute('data-state', 'error')
  })

  it('keeps the interim text when the connection drops mid-sentence', async () => {
    const { textarea, mic } = renderThread()
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    act(() => socket.receive(final('One.')))
    act(() => socket.receive({ type: 'interim_transcript', transcript: 'two' }))
    act(() => socket.serverClose(1011, 'engine died'))
    expect(mic()).toHaveAttribute('data-state', 'error')
    expect(screen.getByRole('alert')).toHaveTextContent('closed unexpectedly (code 1011: engine died)')
    expect(textarea()).toHaveValue('One. Two')
  })

  it('lets a recording be stopped even if the health check fails meanwhile', async () => {
    const media = fakeMedia()
    const { mic, rerender } = renderThread({}, media)
    fireEvent.click(mic())
    await act(async () => undefined)
    act(() => lastSocket().open())
    rerender(<Thread sttUrl={URL} sttAvailable={false} sttEnvironment={() => media.env} />)
    expect(mic()).toHaveAttribute('data-state', 'recording')
    expect(mic()).toBeEnabled()
  })

  it('unmounting while recording releases the microphone and closes the socket', async () => {
    const { mic, unmount, media } = renderThread()
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    unmount()
    expect(media.streams[0].tracks[0].stopCalls).toBe(1)
    expect(socket.closeCalls).toHaveLength(1)
  })
})

describe('Thread with a gateway key (web build, auth on)', () => {
  function keyedGateway(authRequired = true) {
    sessionStorage.clear()
    let n = 0
    const fetch = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).endsWith('/v1/auth')) return new Response(JSON.stringify({ auth_required: authRequired }))
      const ok = new Headers(init?.headers).get('Authorization') === 'Bearer right'
      return ok
        ? new Response(JSON.stringify({ token: `vxt_${++n}`, expires_in: 60, subprotocol: 'bearer' }))
        : new Response(JSON.stringify({ error: 'unauthorized' }), { status: 401 })
    })
    const auth = new GatewayKeyAuth('http://gateway.test', { fetch: fetch as unknown as typeof globalThis.fetch })
    return { auth, fetch }
  }

  const keyForm = () => screen.queryByRole('form', { name: 'Gateway access' })

  it('asks for the key once, then dictates with ["bearer", token]', async () => {
    const user = userEvent.setup()
    const { auth } = keyedGateway()
    const { mic, media } = renderThread({ tokenProvider: auth.tokenProvider, keyPrompt: auth })
    await act(async () => void (await auth.check()))
    expect(keyForm()).toBeInTheDocument()
    const input = screen.getByLabelText('Gateway key')
    expect(input).toHaveAttribute('type', 'password')
    await user.type(input, 'right{Enter}')
    expect(keyForm()).not.toBeInTheDocument()
    expect(sessionStorage.getItem(KEY_STORAGE_ITEM)).toBe('right')

    await user.click(mic())
    await vi.waitFor(() => expect(lastSocket().protocols).toEqual(['bearer', 'vxt_1']))
    act(() => lastSocket().open())
    expect(mic()).toHaveAttribute('data-state', 'recording')
    expect(media.getUserMedia.calls).toHaveLength(1)
    expect(keyForm()).not.toBeInTheDocument()
  })

  it('a wrong key: "The gateway key was refused" in the alert, never recording, the form again', async () => {
    const user = userEvent.setup()
    const { auth } = keyedGateway()
    const { mic, media } = renderThread({ tokenProvider: auth.tokenProvider, keyPrompt: auth })
    await act(async () => void (await auth.check()))
    await user.type(screen.getByLabelText('Gateway key'), 'wrong')
    await user.click(screen.getByRole('button', { name: 'Use key' }))
    await user.click(mic())
    expect(await screen.findByRole('alert')).toHaveTextContent('The gateway key was refused')
    expect(mic()).toHaveAttribute('data-state', 'error')
    expect(media.getUserMedia.calls).toHaveLength(0)
    expect(sessionStorage.getItem(KEY_STORAGE_ITEM)).toBeNull()
    expect(keyForm()).toHaveTextContent('That key was refused')
  })

  it('pressing the mic before entering a key waits for the form; auth off shows no form', async () => {
    const user = userEvent.setup()
    const { auth } = keyedGateway()
    const { mic } = renderThread({ tokenProvider: auth.tokenProvider, keyPrompt: auth })
    await user.click(mic())
    expect(await screen.findByLabelText('Gateway key')).toBeInTheDocument()
    expect(mic()).toHaveAttribute('data-state', 'connecting')
    await user.type(screen.getByLabelText('Gateway key'), 'right{Enter}')
    await vi.waitFor(() => expect(lastSocket().protocols).toEqual(['bearer', 'vxt_1']))
  })

  it('auth off: no form, and the socket opens with no subprotocol', async () => {
    const user = userEvent.setup()
    const { auth, fetch } = keyedGateway(false)
    const { mic } = renderThread({ tokenProvider: auth.tokenProvider, keyPrompt: auth })
    await act(async () => void (await auth.check()))
    expect(keyForm()).not.toBeInTheDocument()
    await user.click(mic())
    await vi.waitFor(() => expect(lastSocket().url).toBe(URL))
    expect(lastSocket().protocols).toBeUndefined()
    expect(fetch.mock.calls.filter(([, init]) => init?.method === 'POST')).toEqual([])
  })
})

describe('Thread: the "Spoken punctuation" setting', () => {
  const toggle = () => screen.getByRole('switch', { name: 'Spoken punctuation' })

  async function dictateOnce(mic: () => HTMLElement) {
    fireEvent.click(mic())
    await act(async () => undefined)
    const socket = lastSocket()
    act(() => socket.open())
    return socket
  }

  async function stopRun(mic: () => HTMLElement, socket: ReturnType<typeof lastSocket>) {
    fireEvent.click(mic())
    await act(async () => undefined)
    act(() => socket.receive({ type: 'stopped' }))
    expect(mic()).toHaveAttribute('data-state', 'idle')
  }

  it('renders an accessible switch, off by default, with a hint naming the commands', () => {
    renderThread()
    expect(toggle()).not.toBeChecked()
    expect(toggle()).toHaveAccessibleDescription(/say .*comma.*new line/i)
    expect(screen.getByLabelText('Spoken punctuation')).toBe(toggle())
  })

  it('persists the choice in localStorage and reads it back on the next load', async () => {
    const user = userEvent.setup()
    const first = renderThread()
    await user.click(toggle())
    expect(toggle()).toBeChecked()
    expect(localStorage.getItem(DICTATION_STORAGE_ITEM)).toBe('on')
    first.unmount()

    renderThread()
    expect(toggle()).toBeChecked()
    await user.click(toggle())
    expect(toggle()).not.toBeChecked()
    expect(localStorage.getItem(DICTATION_STORAGE_ITEM)).toBe('off')
  })

  it('sends dictation: true in configure when on, and no dictation field when off', async () => {
    const user = userEvent.setup()
    const { mic } = renderThread()
    const off = await dictateOnce(mic)
    expect(off.textFrames[0]).toMatchObject({ action: 'configure' })
    expect(off.textFrames[0]).not.toHaveProperty('dictation')
    await stopRun(mic, off)

    await user.click(toggle())
    const on = await dictateOnce(mic)
    expect(on.textFrames[0]).toMatchObject({ action: 'configure', dictation: true })
    await stopRun(mic, on)
  })

  it('starts on when it was saved on', async () => {
    localStorage.setItem(DICTATION_STORAGE_ITEM, 'on')
    const { mic } = renderThread()
    const socket = await dictateOnce(mic)
    expect(socket.textFrames[0]).toMatchObject({ dictation: true })
  })

  it('a change during a dictation applies from the next one, and says so', async () => {
    const user = userEvent.setup()
    const { mic } = renderThread()
    const first = await dictateOnce(mic)
    expect(toggle()).toHaveAccessibleDescription(expect.not.stringContaining('next dictation'))
    await user.click(toggle())
    expect(toggle()).toHaveAccessibleDescription(/Applies from the next dictation/)
    // The running session keeps the configure it started with.
    expect(first.textFrames.filter((frame) => (frame as { action?: string }).action === 'configure')).toHaveLength(1)
    expect(first.textFrames[0]).not.toHaveProperty('dictation')
    await stopRun(mic, first)
    expect(toggle()).toHaveAccessibleDescription(expect.not.stringContaining('next dictation'))

    const second = await dictateOnce(mic)
    expect(second.textFrames[0]).toMatchObject({ dictation: true })
  })
})
