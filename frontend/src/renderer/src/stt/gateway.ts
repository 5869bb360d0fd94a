/**
 * Where this app's gateway is: the page's own origin in the web build, the preload's
 * setting in Electron (the `window.voxrelay` bridge is this app's, so this stays here;
 * `gatewayUrls` is in `@voxrelay/client`).
 */

import { DEFAULT_GATEWAY_URL, gatewayUrls, type GatewayUrls } from '@voxrelay/client'

/** The URLs this renderer talks to: the Electron bridge's gateway, else this page's origin. */
export function currentGateway(win: Pick<Window, 'location'> & { voxrelay?: { getGatewayUrl(): string } } = window): GatewayUrls {
  const fromBridge = win.voxrelay?.getGatewayUrl()
  if (fromBridge) return gatewayUrls(fromBridge)
  const { protocol, origin } = win.location
  return gatewayUrls(protocol === 'http:' || protocol === 'https:' ? origin : DEFAULT_GATEWAY_URL)
}
