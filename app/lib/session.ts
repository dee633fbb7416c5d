import { EdgeqClient } from "../../client/index";

/**
 * Where the dashboard's API is and the credential it uses. On the local stack
 * `npm start` hands the dashboard its admin token; anywhere else the user
 * signs in with an API key, kept in this tab's session storage only. Live
 * updates open their socket with a short-lived live token (the SDK asks for
 * one), so the key never goes into a URL.
 */
export interface Session {
  api: string;
  token: string;
  /** signed in by the local stack, not by the user */
  local: boolean;
}

const KEY = "edgeq.session";

export function restore(api: string | null, localToken: string | null): Session | null {
  const base = api ?? location.origin;
  if (localToken) return { api: base, token: localToken, local: true };
  const saved = sessionStorage.getItem(KEY);
  if (!saved) return null;
  const { token, api: savedApi } = JSON.parse(saved) as { token: string; api: string };
  return { api: savedApi ?? base, token, local: false };
}

export function remember(api: string, token: string): Session {
  sessionStorage.setItem(KEY, JSON.stringify({ api, token }));
  return { api, token, local: false };
}

export function forget(): void {
  sessionStorage.removeItem(KEY);
}

export const clientOf = (s: Session) => new EdgeqClient({ url: s.api, token: s.token, retries: 1 });

/** An API error as a person reads it. */
export function readable(e: unknown): string {
  const p = (e as { problem?: { title?: string; detail?: string } }).problem;
  if (p) return p.detail ?? p.title ?? "The API refused the request.";
  return e instanceof Error ? e.message : String(e);
}
