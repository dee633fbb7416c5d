/**
 * A queue's settings as the Queue page's form edits them, and the PATCH that
 * form makes (pure, tested without a browser): only what changed is sent; a
 * cleared limit is sent as null, which removes it. Ranges are the API's; the
 * API checks them again and its refusal is shown as it says it.
 */
import type { QueueInfo } from "../../client/types";

type Settings = QueueInfo["settings"];

/** Every field as the form holds it (text inputs: "" means no limit). */
export interface SettingsForm {
  shards: string;
  maxAttempts: string;
  timeoutMs: string;
  backoffBaseMs: string;
  backoffFactor: string;
  backoffMaxMs: string;
  retentionDays: string;
  idempotencyWindowMs: string;
  concurrency: string;
  startCount: string;
  startPerMs: string;
  groupConcurrency: string;
}

const text = (n: number | null | undefined) => (n === null || n === undefined ? "" : String(n));

export function formOf(s: Settings): SettingsForm {
  return {
    shards: text(s.shards),
    maxAttempts: text(s.defaults.maxAttempts),
    timeoutMs: text(s.defaults.timeoutMs),
    backoffBaseMs: text(s.defaults.backoff.baseMs),
    backoffFactor: text(s.defaults.backoff.factor),
    backoffMaxMs: text(s.defaults.backoff.maxMs),
    retentionDays: text(s.retentionDays),
    idempotencyWindowMs: text(s.idempotencyWindowMs),
    concurrency: text(s.concurrency),
    startCount: text(s.startLimit?.count),
    startPerMs: text(s.startLimit?.perMs),
    groupConcurrency: text(s.groupLimits.default?.concurrency),
  };
}

export type Patch = Record<string, unknown>;

/** The form's label for each field, by the API's JSON pointer: local refusals and the API's name the same field. */
export const LABELS: Record<string, string> = {
  "/shards": "Shards",
  "/defaults/maxAttempts": "Max attempts",
  "/defaults/timeoutMs": "Timeout (ms)",
  "/defaults/backoff/baseMs": "Backoff base (ms)",
  "/defaults/backoff/factor": "Backoff factor",
  "/defaults/backoff/maxMs": "Backoff max (ms)",
  "/retentionDays": "Retention (days)",
  "/idempotencyWindowMs": "Idempotency window (ms)",
  "/concurrency": "Concurrency, whole queue",
  "/startLimit/count": "Start limit: starts",
  "/startLimit/perMs": "Start limit: per (ms)",
  "/groupLimits/default/concurrency": "Concurrency per group",
};

/** The API's refusal of a settings change, each error under the label of its field: "Max attempts: Too small: …". */
export function refusal(e: unknown): string | null {
  const errors = (e as { problem?: { errors?: { pointer?: string; detail?: string }[] } }).problem?.errors;
  if (!errors || errors.length === 0) return null;
  return errors.map((x) => `${LABELS[x.pointer ?? ""] ?? x.pointer ?? "Settings"}: ${x.detail ?? "not valid"}`).join(" · ");
}

/** A whole number, or the field's name in the error. */
function int(value: string, label: string): number {
  const n = Number(value.trim());
  if (value.trim() === "" || !Number.isInteger(n)) throw new Error(`${label} must be a whole number.`);
  return n;
}

/**
 * The PATCH body that turns `was` into what the form says, or an Error
 * naming the field that is not a number. Nothing changed → `{}`.
 */
export function patchOf(was: Settings, form: SettingsForm): Patch {
  const before = formOf(was);
  const changed = (k: keyof SettingsForm) => form[k].trim() !== before[k];
  const patch: Patch = {};
  if (changed("shards")) patch.shards = int(form.shards, LABELS["/shards"]);
  const defaults: Patch = {};
  if (changed("maxAttempts")) defaults.maxAttempts = int(form.maxAttempts, LABELS["/defaults/maxAttempts"]);
  if (changed("timeoutMs")) defaults.timeoutMs = int(form.timeoutMs, LABELS["/defaults/timeoutMs"]);
  if (changed("backoffBaseMs") || changed("backoffFactor") || changed("backoffMaxMs")) {
    const factor = Number(form.backoffFactor.trim());
    if (form.backoffFactor.trim() === "" || !Number.isFinite(factor))
      throw new Error(`${LABELS["/defaults/backoff/factor"]} must be a number.`);
    defaults.backoff = {
      baseMs: int(form.backoffBaseMs, LABELS["/defaults/backoff/baseMs"]),
      factor,
      maxMs: int(form.backoffMaxMs, LABELS["/defaults/backoff/maxMs"]),
    };
  }
  if (Object.keys(defaults).length > 0) patch.defaults = defaults;
  if (changed("retentionDays")) patch.retentionDays = int(form.retentionDays, LABELS["/retentionDays"]);
  if (changed("idempotencyWindowMs")) patch.idempotencyWindowMs = int(form.idempotencyWindowMs, LABELS["/idempotencyWindowMs"]);
  if (changed("concurrency")) patch.concurrency = form.concurrency.trim() === "" ? null : int(form.concurrency, LABELS["/concurrency"]);
  if (changed("startCount") || changed("startPerMs")) {
    const none = form.startCount.trim() === "" && form.startPerMs.trim() === "";
    patch.startLimit = none
      ? null
      : { count: int(form.startCount, LABELS["/startLimit/count"]), perMs: int(form.startPerMs, LABELS["/startLimit/perMs"]) };
  }
  if (changed("groupConcurrency")) {
    const rest = was.groupLimits.default?.startLimit ? { startLimit: was.groupLimits.default.startLimit } : null;
    const concurrency = form.groupConcurrency.trim() === "" ? null : int(form.groupConcurrency, LABELS["/groupLimits/default/concurrency"]);
    // A group start limit set over the API stays as it is.
    patch.groupLimits = { default: concurrency === null ? rest : { ...rest, concurrency } };
  }
  return patch;
}
