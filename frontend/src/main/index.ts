/**
 * Electron main process: one window, locked down.
 *
 * - webPreferences: contextIsolation on, nodeIntegration off, sandbox on, webSecurity on.
 * - The renderer is served from `app://voxrelay/` (a privileged, secure custom scheme)
 *   with a strict Content-Security-Policy header whose connect-src is the gateway only.
 * - Permission handler: the microphone (audio only) for the app's pages; nothing else.
 * - No navigation away from the app, no new windows, no <webview>.
 * - The preload gets the gateway URL via `additionalArguments`; settings go over two
 *   IPC channels and tokens over a third (`voxrelay:mint-token`, see tokens.ts), all
 *   with the sender checked. The gateway key stays in this process.
 */

import { app, BrowserWindow, ipcMain, net, protocol, session, shell, type IpcMainInvokeEvent } from 'electron'
import { join, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { VoxrelaySettings } from '../preload/api'
import { gatewayOverride, isAudioMode, sanitizeSettings, SettingsStore } from './settings'
import { registerTokenIpc } from './tokens'
import {
  allowsPermissionCheck,
  APP_ORIGIN,
  APP_SCHEME,
  appPathFor,
  contentSecurityPolicy,
  grantsPermission,
  isAppUrl,
  mimeType,
  parseGatewayUrl,
} from './security'

protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
])

const devServer = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined
const rendererDir = resolve(join(__dirname, '../renderer'))

let settings: VoxrelaySettings
/** The gateway key: main process only (tokens are minted with it; the renderer gets tokens). */
let apiKey: string | undefined

function serveRenderer(csp: string): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const relative = appPathFor(request.url)
    const file = relative === null ? null : resolve(rendererDir, relative)
    if (!file || (file !== rendererDir && !file.startsWith(rendererDir + sep))) {
      return new Response('Not found', { status: 404 })
    }
    const response = await net.fetch(pathToFileURL(file).href)
    return new Response(response.body, {
      status: response.status,
      headers: {
        'Content-Type': mimeType(file),
        'Content-Security-Policy': csp,
        'X-Content-Type-Options': 'nosniff',
      },
    })
  })
}

function lockDownSession(csp: string): void {
  const ses = session.defaultSession
  // The dev server's pages get the same CSP as a header.
  ses.webRequest.onHeadersReceived((details, callback) => {
    const headers = { ...details.responseHeaders }
    if (details.resourceType === 'mainFrame') headers['Content-Security-Policy'] = [csp]
    callback({ responseHeaders: headers })
  })
  ses.setPermissionRequestHandler((_contents, permission, callback, details) => {
    callback(grantsPermission(permission, details as { mediaTypes?: string[]; requestingUrl?: string }, devServer))
  })
  ses.setPermissionCheckHandler((_contents, permission, origin, details) =>
    allowsPermissionCheck(permission, origin, details as { mediaType?: string }, devServer),
  )
  ses.setDevicePermissionHandler(() => false)
}

function fromApp(event: IpcMainInvokeEvent): boolean {
  return isAppUrl(event.senderFrame?.url ?? '', devServer)
}

function registerIpc(store: SettingsStore): void {
  registerTokenIpc(ipcMain, () => ({ gatewayUrl: settings.gatewayUrl, apiKey }), (url) => isAppUrl(url, devServer))
  ipcMain.handle('voxrelay:get-settings', (event) => {
    if (!fromApp(event)) throw new Error('not allowed')
    return settings
  })
  ipcMain.handle('voxrelay:set-audio-mode', async (event, mode: unknown) => {
    if (!fromApp(event)) throw new Error('not allowed')
    if (!isAudioMode(mode)) throw new Error('audio mode must be "linear16" or "webm"')
    settings = { ...settings, audioMode: mode }
    await store.save(settings)
    return settings
  })
}

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 900,
    height: 720,
    show: false,
    title: 'voxrelay',
    autoHideMenuBar: true,
    webPreferences: {
      preload: join(__dirname, '../preload/index.js'),
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: true,
      additionalArguments: [`--voxrelay-gateway-url=${settings.gatewayUrl}`],
    },
  })
  window.once('ready-to-show', () => window.show())
  void window.loadURL(devServer ?? `${APP_ORIGIN}/index.html`)
  return window
}

app.on('web-contents-created', (_event, contents) => {
  contents.setWindowOpenHandler(({ url }) => {
    if (url.startsWith('https://')) void shell.openExternal(url)
    return { action: 'deny' }
  })
  contents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url, devServer)) event.preventDefault()
  })
  contents.on('will-attach-webview', (event) => event.preventDefault())
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})

void app.whenReady().then(async () => {
  const store = new SettingsStore(app.getPath('userData'))
  settings = await store.load()
  apiKey = await store.loadApiKey(process.env)
  const override = gatewayOverride(process.argv, process.env)
  if (override) {
    try {
      settings = sanitizeSettings({ ...settings, gatewayUrl: parseGatewayUrl(override).href })
    } catch (error) {
      console.error(`Ignoring the gateway URL ${override}: ${(error as Error).message}`)
    }
  }
  const csp = contentSecurityPolicy(settings.gatewayUrl, devServer)
  serveRenderer(csp)
  lockDownSession(csp)
  registerIpc(store)
  createWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow()
  })
})
