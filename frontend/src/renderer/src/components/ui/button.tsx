import type { ButtonHTMLAttributes } from 'react'

export type ButtonVariant = 'primary' | 'ghost' | 'danger'

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: ButtonVariant
}

/** A plain button with the app's look; `type` defaults to "button". */
export function Button({ variant = 'ghost', className, type = 'button', ...props }: ButtonProps): React.JSX.Element {
  return <button type={type} className={['btn', `btn-${variant}`, className].filter(Boolean).join(' ')} {...props} />
}
