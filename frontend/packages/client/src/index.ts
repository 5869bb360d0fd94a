/**
 * `@voxrelay/client`: dictation against a voxrelay gateway's `/stt-stream`, with no framework.
 *
 * - `SttClient`: microphone capture (AudioWorklet PCM16, or MediaRecorder webm/opus) and the socket.
 * - `sttReducer`: the transcript and status state its events make (pure; the React hook uses it).
 * - `GatewayKeyAuth` / `bridgeTokenProvider`: short-lived connection tokens for gateways with keys.
 * - `gatewayUrls`: a gateway's health and stream URLs from its base URL.
 * - The protocol's message types and helpers.
 */

export * from './client'
export * from './reducer'
export * from './protocol'
export * from './auth'
export * from './gateway'
