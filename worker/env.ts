import type { Principal } from "../schema/access";

/** Hono environment of the API Worker: the bindings, and what middleware resolves per request. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** who the request acts as (set by the auth middleware) */
    principal: Principal;
    /** the tenant every call of this request acts for: the principal's */
    tenant: string;
    requestId: string;
  };
}
