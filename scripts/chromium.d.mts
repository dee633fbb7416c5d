import type { Browser } from "playwright-core";

/** Where Debian installs Chromium. */
export const CHROMIUM: string;
/** Debian's Chromium, headless (scripts/chromium.mjs). */
export function launchChromium(): Promise<Browser>;
