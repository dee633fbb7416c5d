/**
 * The wire contract: every request and response body of /api/v1, as zod
 * schemas, by concern. Routes validate with them, the OpenAPI document is
 * generated from them, and the SDK takes its types from them (type-only imports).
 */
export * from "./api-tasks";
export * from "./api-queues";
export * from "./api-access";
export * from "./api-history";
export * from "./api-live";
export * from "./api-analytics";
export * from "./api-reports";
export * from "./api-consume";
