// SvelteKit's ambient types for the dashboard: what the Pages platform passes to server code.
declare global {
  namespace App {
    interface Platform {
      env?: {
        /** where the API is (default: the dashboard's own origin) */
        EDGEQ_API_URL?: string;
        /** the local stack's admin token, handed to the browser: set by `npm start` only, never in production */
        EDGEQ_LOCAL_TOKEN?: string;
      };
    }
  }
}
export {};
