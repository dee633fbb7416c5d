import type { LayoutServerLoad } from "./$types";

// What the browser needs to reach the API; the local admin token only where `npm start` set it.
export const load: LayoutServerLoad = ({ platform }) => ({
  api: platform?.env?.EDGEQ_API_URL ?? null,
  localToken: platform?.env?.EDGEQ_LOCAL_TOKEN ?? null,
});
