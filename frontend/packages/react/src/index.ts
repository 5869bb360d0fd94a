/**
 * `@voxrelay/react`: the `useSpeechToText` hook and an accessible `DictationButton`,
 * on top of `@voxrelay/client` (whose types it re-exports for convenience).
 */

export { useSpeechToText, type SpeechToText, type UseSpeechToTextOptions } from './useSpeechToText'
export {
  DictationButton,
  dictationButtonState,
  dictationLabel,
  type DictationButtonProps,
  type DictationButtonState,
} from './DictationButton'
export type { CaptureMode, MediaEnvironment, StreamOptions, SttStatus, TokenProvider } from '@voxrelay/client'
