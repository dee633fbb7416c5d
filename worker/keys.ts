/**
 * API keys: `eq_<id>_<secret>`, 16 hex digits of id (names the key's AccessKey
 * object, so a lookup needs no index) and 256 random bits of secret. Only the
 * SHA-256 of the whole key is stored.
 */
const KEY = /^eq_([0-9a-f]{16})_([0-9a-f]{64})$/;

const hex = (bytes: ArrayBuffer | Uint8Array) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

export function parseKey(token: string): { id: string } | null {
  const m = KEY.exec(token);
  return m ? { id: m[1] } : null;
}

/** `bytes` random bytes as hex. */
export const randomHex = (bytes: number) => hex(crypto.getRandomValues(new Uint8Array(bytes)));

export function newKey(): { id: string; key: string } {
  const id = randomHex(8);
  return { id, key: `eq_${id}_${randomHex(32)}` };
}

export async function hashKey(key: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
}

/** The AccessKey object of a credential: `key:<id>` for API keys, `jwt:<tenant>:<sub>` for JWT subjects. */
export function accessObject(env: Env, name: string) {
  return env.ACCESS_KEY.get(env.ACCESS_KEY.idFromName(name));
}

export const accessKeyOf = (env: Env, keyId: string) => accessObject(env, `key:${keyId}`);
