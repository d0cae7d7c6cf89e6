// Running one benchmark page (benches/web/) in headless Chromium: the
// mounts served from 127.0.0.1, a fresh profile, and the page's
// window.benchResult awaited and returned (its error thrown); the browser,
// the server and the profile gone after, whatever happened.

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

export async function runPage(mounts, pagePath) {
  const server = await serveStatic(mounts);
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-bench-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await context.newPage();
    page.on('console', (m) => console.error(`[page] ${m.text()}`));
    await page.goto(`${server.url}${pagePath}`);
    await page.waitForFunction(() => window.benchResult, null, { timeout: 3_600_000, polling: 1000 });
    const r = await page.evaluate(() => window.benchResult);
    if (r.error) throw new Error(r.error);
    console.error(JSON.stringify(r));
    return r;
  } finally {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
