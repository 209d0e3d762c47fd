/**
 * The webview's side of the channel to the extension host (src/shared/channel.ts): `host.notify`
 * for events, `host.request` for requests, and `connectHost` to install the handlers of what the
 * host sends. VS Code's webview messaging moves ArrayBuffers itself, so no transfer list is given.
 */
import { Channel, type Handlers } from '../../src/shared/channel';
import type { HostToWebview, WebviewToHost } from '../../src/shared/protocol';

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; getState(): unknown; setState(s: unknown): void };
export const vscodeApi = acquireVsCodeApi();

export type HostChannel = Channel<WebviewToHost, HostToWebview>;

let channel: HostChannel | undefined;

/** Connects the page to the host with these handlers (once, at start-up). */
export function connectHost(handlers: Handlers<HostToWebview>): HostChannel {
  channel = new Channel({ post: (m) => vscodeApi.postMessage(m) }, handlers, {
    onDropped: (why) => console.warn(`weightlens: dropped a message from the host (${why})`),
  });
  window.addEventListener('message', (event: MessageEvent) => channel!.receive(event.data));
  return channel;
}

/** The channel, for the modules that send (after connectHost). */
export function host(): HostChannel {
  if (!channel) throw new Error('internal: the host channel is not connected yet');
  return channel;
}
