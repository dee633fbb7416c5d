import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { QueueError } from "../../durable/core/errors";
import { LIMITS } from "../../schema/api";
import type { AppEnv } from "../env";

/** Refuses bodies over 8 MiB with 413 before they are read in full. */
export function limits(): MiddlewareHandler<AppEnv> {
  return bodyLimit({
    maxSize: LIMITS.bodyBytes,
    onError: () => {
      throw new QueueError("payload_too_large", `The request body is over ${LIMITS.bodyBytes} bytes; send fewer tasks per batch.`);
    },
  });
}
