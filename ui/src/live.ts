// Live updates: one EventSource on GET /api/stream for the whole page; screens subscribe and
// refetch what they show. A `lagged` event (this client fell behind the server's bounded
// buffer) reaches listeners as `null`: refetch everything. Reusable by every screen (the
// dispatcher map subscribes the same way).
import type { Change } from "./types";

type Listener = (change: Change | null) => void;
const listeners = new Set<Listener>();
const statusListeners = new Set<(connected: boolean) => void>();
let source: EventSource | null = null;

export function startLive(): void {
  if (source) return;
  source = new EventSource("/api/stream", { withCredentials: true });
  source.addEventListener("open", () => statusListeners.forEach((l) => l(true)));
  source.addEventListener("error", () => statusListeners.forEach((l) => l(false)));
  source.addEventListener("appeal", (ev) => {
    const change = JSON.parse((ev as MessageEvent).data) as Change;
    listeners.forEach((l) => l(change));
  });
  source.addEventListener("lagged", () => listeners.forEach((l) => l(null)));
}

export function stopLive(): void {
  source?.close();
  source = null;
}

/// Calls `listener` on every change; returns the unsubscribe function.
export function onChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onLiveStatus(listener: (connected: boolean) => void): () => void {
  statusListeners.add(listener);
  return () => statusListeners.delete(listener);
}
