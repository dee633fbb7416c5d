/**
 * API keys: `eq_<id>_<secret>`, 16 hex digits of id (names the key's AccessKey
 * object, so a lookup needs no index) and 64 hex digits of secret: 128 random
 * bits, then a 128-bit HMAC of id and random part under the deployment's key
 * secret. The Worker checks the MAC before it touches any Durable Object, so a
 * forged key costs no object, no storage and no DO request. Only the SHA-256
 * of the whole key is stored.
 */
import { QueueError } from "../durable/core/errors";
import { config } from "./config";

const KEY = /^eq_([0-9a-f]{16})_([0-9a-f]{32})([0-9a-f]{32})$/;

export const hex = (bytes: ArrayBuffer | Uint8Array) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

export function parseKey(token: string): { id: string; random: string; mac: string } | null {
  const m = KEY.exec(token);
  return m ? { id: m[1], random: m[2], mac: m[3] } : null;
}

const encoder = new TextEncoder();
const macKeys = new Map<string, Promise<CryptoKey>>();

/** The first 16 bytes of HMAC-SHA256(secret, `${id}.${random}`), as hex. */
async function keyMac(secret: string, id: string, random: string): Promise<string> {
  let key = macKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    macKeys.set(secret, key);
  }
  const mac = await crypto.subtle.sign("HMAC", await key, encoder.encode(`${id}.${random}`));
  return hex(mac).slice(0, 32);
}

/** Compares two secrets in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.length === y.length && crypto.subtle.timingSafeEqual(x, y);
}

/** Whether `token` is a key this deployment made (its MAC holds); says nothing of revocation. */
export async function madeHere(secret: string, key: { id: string; random: string; mac: string }): Promise<boolean> {
  return sameSecret(await keyMac(secret, key.id, key.random), key.mac);
}

/** `bytes` random bytes as hex. */
export const randomHex = (bytes: number) => hex(crypto.getRandomValues(new Uint8Array(bytes)));

export async function newKey(secret: string): Promise<{ id: string; key: string }> {
  const id = randomHex(8);
  const random = randomHex(16);
  return { id, key: `eq_${id}_${random}${await keyMac(secret, id, random)}` };
}

export async function hashKey(key: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
}

/** The AccessKey object of a credential: `key:<id>` for API keys, `jwt:<tenant>:<sub>` for JWT subjects. */
export function accessObject(env: Env, name: string) {
  return env.ACCESS_KEY.get(env.ACCESS_KEY.idFromName(name));
}

export const accessKeyOf = (env: Env, keyId: string) => accessObject(env, `key:${keyId}`);

/**
 * Short-lived tokens that open a WebSocket with `?token=` (a browser's WebSocket
 * cannot carry a header, and not every runtime's can): `<prefix><tenant>.<expiry ms>.<mac>`,
 * one tenant, valid for a minute, so a long-lived API key never goes in a URL.
 * - `live`: `GET /live`, read-only (`eqlive_`)
 * - `consume`: `GET /queues/{queue}/consume`, a consumer (`eqcons_`)
 */
export type SocketScope = "live" | "consume";
const SCOPE_PREFIX: Record<SocketScope, string> = { live: "eqlive_", consume: "eqcons_" };

export async function socketToken(secret: string, scope: SocketScope, tenant: string, expiresAt: number): Promise<string> {
  return `${SCOPE_PREFIX[scope]}${tenant}.${expiresAt}.${await keyMac(secret, `${scope}:${tenant}`, String(expiresAt))}`;
}

/** How long a socket token opens a socket. */
const SOCKET_TOKEN_MS = 60_000;

/** A socket token of this scope for the tenant, valid SOCKET_TOKEN_MS; 503 when the deployment has no key secret to sign it with. */
export async function issueSocketToken(env: Env, scope: SocketScope, tenant: string) {
  const secret = config(env).keySecret;
  if (secret === null) {
    throw new QueueError(
      "unavailable",
      `${scope === "live" ? "Live" : "Consume"} tokens need EDGEQ_KEY_SECRET or EDGEQ_ADMIN_TOKEN to be set.`,
    );
  }
  const expiresAt = Date.now() + SOCKET_TOKEN_MS;
  return { token: await socketToken(secret, scope, tenant, expiresAt), expiresAt: new Date(expiresAt).toISOString() };
}

/** The tenant a socket token of this scope is for, if it is one this deployment made and it has not expired. */
export async function socketTokenTenant(secret: string, scope: SocketScope, token: string, now = Date.now()): Promise<string | null> {
  const prefix = SCOPE_PREFIX[scope];
  const m = /^([a-z0-9][a-z0-9_-]{0,47})\.(\d{13})\.([0-9a-f]{32})$/.exec(token.startsWith(prefix) ? token.slice(prefix.length) : "");
  if (!m || Number(m[2]) <= now) return null;
  return sameSecret(await keyMac(secret, `${scope}:${m[1]}`, m[2]), m[3]) ? m[1] : null;
}
