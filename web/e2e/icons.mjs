// Renders web/static/icon.svg into the PNG icons of the web manifest (192 and 512 pixels):
// `npm run icons` after changing the SVG, then commit the PNGs.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "./browser.mjs";

const staticDir = join(dirname(fileURLToPath(import.meta.url)), "..", "static");
const svg = readFileSync(join(staticDir, "icon.svg"), "utf8");
const browser = await launch();
try {
  for (const size of [192, 512]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    await page.setContent(`<style>html,body{margin:0;background:transparent}svg{display:block;width:${size}px;height:${size}px}</style>${svg}`);
    await page.screenshot({ path: join(staticDir, `icon-${size}.png`), omitBackground: true });
    await page.close();
  }
} finally {
  await browser.close();
}
