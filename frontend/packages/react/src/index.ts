/**
 * `@voxrelay/react`: the `useSpeechToText` hook, an accessible `DictationButton` (with an
 * optional keyboard shortcut), `DictationLevelMeter` and `DictationStatus` (live announcements),
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
export { DictationStatus, type DictationStatusProps } from './DictationStatus'
export { DictationLevelMeter, meterValue, type DictationLevelMeterProps } from './DictationLevelMeter'
export { dictationShortcut, isApplePlatform, isDictationShortcut, type DictationShortcut } from './shortcut'
export type { CaptureMode, MediaEnvironment, StreamOptions, SttStatus, SttWarning, TokenProvider } from '@voxrelay/client'
