/**
 * `DictationLevelMeter`: the microphone's input level as an accessible meter.
 *
 * A `role="meter"` element (not focusable, so not in the tab order) named "Microphone
 * level" with `aria-valuemin` 0, `aria-valuemax` 100 and `aria-valuenow` the level in
 * percent (the hook's 0..1 RMS level, scaled ×4 like the bar, so speech fills it);
 * `data-level` carries the raw level. Its child bar is drawn with `transform: scaleX()`.
 * It sits next to the button, not inside it: a button's content is presentational to
 * assistive technology. Render it while recording (or pass `hidden`).
 */

import type { HTMLAttributes, ReactNode } from 'react'

export interface DictationLevelMeterProps extends Omit<HTMLAttributes<HTMLDivElement>, 'role' | 'children'> {
  /** The hook's `level`, 0..1. */
  level: number
  /** The meter's accessible name. */
  label?: string
  /** Class of the inner bar (default: an inline bar in `currentColor`). */
  barClassName?: string
}

/** The level as the meter shows it, 0..100. */
export const meterValue = (level: number): number => Math.round(Math.min(1, Math.max(0, level) * 4) * 100)

export function DictationLevelMeter({
  level,
  label = 'Microphone level',
  barClassName,
  style,
  ...rest
}: DictationLevelMeterProps): ReactNode {
  const value = meterValue(level)
  return (
    <div
      role="meter"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value}
      aria-valuetext={`${value}%`}
      data-level={level.toFixed(3)}
      style={barClassName ? style : { display: 'inline-block', width: '3em', height: '0.3em', ...style }}
      {...rest}
    >
      <span
        className={barClassName}
        style={{
          display: 'block',
          height: '100%',
          transformOrigin: 'left',
          transform: `scaleX(${(value / 100).toFixed(2)})`,
          ...(barClassName ? {} : { background: 'currentColor' }),
        }}
      />
    </div>
  )
}
