/** Hono environment of the API Worker: the bindings, and what middleware resolves per request. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    /** the tenant every call of this request acts for (set by the tenant middleware) */
    tenant: string;
    requestId: string;
  };
}
