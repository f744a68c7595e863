// Launching Debian's Chromium through playwright-core (Playwright's own browser download is not
// used): CHROMIUM names another binary.
import { chromium } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

export function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}
