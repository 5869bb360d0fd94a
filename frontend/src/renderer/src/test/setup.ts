import '@testing-library/jest-dom/vitest'
import { cleanup } from '@testing-library/react'
import { afterEach } from 'vitest'

afterEach(() => {
  cleanup()
  // Settings (the "Spoken punctuation" switch) are kept in localStorage: each test starts clean.
  if (typeof window !== 'undefined') window.localStorage?.clear()
})
