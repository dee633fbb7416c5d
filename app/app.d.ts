// SvelteKit's ambient types for the dashboard: what the Pages platform passes to server code.
declare global {
  namespace App {
    /** what a page hands the next one it opens (shallow state): a task just deleted, left out of lists history still shows */
    interface PageState {
      deleted?: string;
    }
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
