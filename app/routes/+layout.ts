// The dashboard renders in the browser: it reads the API with the user's credential, which the server never holds.
export const ssr = false;
