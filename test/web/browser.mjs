// Loads pages in one headless Debian Chromium (/usr/bin/chromium, driven by playwright-core,
// which downloads no browser of its own) and collects what each page left in window.grelayResults:
//
//   node browser.mjs LABEL=PAGE_URL...
//
// Prints one JSON line, {LABEL: its results}. A page that leaves no results in time reports
// {failed: "...", console: [its console lines and uncaught errors]}.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const chromiumPath = "/usr/bin/chromium";
const pageTimeoutMs = 60000;
// Quiet and self-contained: no QUIC, no calls home, no GPU, and a profile of its own.
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // grelay's TLS listener in the tests has a certificate of the tests' own CA, on loopback.
  "--ignore-certificate-errors",
];

const pages = process.argv.slice(2).map((arg) => {
  const at = arg.indexOf("=");
  if (at <= 0) {
    console.error("usage: node browser.mjs LABEL=PAGE_URL...");
    process.exit(2);
  }
  return [arg.slice(0, at), arg.slice(at + 1)];
});

// playwright-core passes --user-data-dir itself, from this fresh directory.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "grelay-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath, headless: true, args, timeout: pageTimeoutMs,
});
const out = {};
try {
  for (const [label, url] of pages) {
    const page = await context.newPage();
    const log = [];
    page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => log.push(`uncaught: ${e.message}`));
    try {
      await page.goto(url);
      await page.waitForFunction(() => window.grelayResults !== undefined, null,
                                 { timeout: pageTimeoutMs });
      out[label] = await page.evaluate(() => window.grelayResults);
    } catch (e) {
      out[label] = { failed: String(e), console: log };
    }
    await page.close();
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + "\n");
