import { expect, Page, test } from "@playwright/test";
import * as fs from "fs";
import * as path from "path";
import { hydrated, workspace } from "./helpers";

// Time to interactive on the tokens page over a slow link (10 Mbit/s, 40 ms RTT) on a
// CPU slowed 4×: from navigation to the hydration marker, on a first visit (empty
// cache) and a repeat visit. The figures go to test-results/speed.json; they mean
// something on a release build (see BENCHMARKS.md), so the test asserts only what holds
// on any build: the bundle travels compressed, and a repeat visit takes it from cache.

const PAGE = "/settings/developer/api-tokens";

async function throttle(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 40,
    downloadThroughput: (10 * 1024 * 1024) / 8,
    uploadThroughput: (10 * 1024 * 1024) / 8,
  });
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
}

type Visit = { ms: number; wasmTransfer: number; wasmSize: number; wasmEncoding: string };

async function visit(page: Page): Promise<Visit> {
  let wasmEncoding = "";
  page.on("response", async (res) => {
    if (/\/pkg\/qahub\.[\w-]+\.wasm$/.test(res.url())) {
      wasmEncoding = (await res.allHeaders())["content-encoding"] ?? "identity";
    }
  });
  await page.goto(PAGE);
  await page.waitForFunction(() => (window as any).__hydratedAt !== undefined, null, { timeout: 30_000 });
  return page.evaluate(() => {
    const wasm = performance
      .getEntriesByType("resource")
      .find((e) => /\/pkg\/qahub\.[\w-]+\.wasm$/.test(e.name)) as PerformanceResourceTiming | undefined;
    return {
      ms: Math.round((window as any).__hydratedAt),
      wasmTransfer: wasm?.transferSize ?? -1,
      wasmSize: wasm?.decodedBodySize ?? -1,
      wasmEncoding: "",
    };
  }).then((v) => ({ ...v, wasmEncoding }));
}

test("the tokens page is interactive quickly on a slow link, and faster from cache", async ({ page }, testInfo) => {
  test.skip(!hydrated(testInfo), "hydration is measured with JavaScript on");
  const ws = await workspace(testInfo, "speed");
  // Sign in without loading a page, so the first visit starts with an empty cache.
  const login = await page.request.post("/_qh/login", { form: { email: ws.owner.email, password: ws.owner.password } });
  expect(login.status()).toBe(200);
  // Records when the hydrate entry sets its marker, relative to navigation start.
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.body?.getAttribute("data-hydrated") === "true") {
        (window as any).__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-hydrated"] });
  });
  await throttle(page);

  const first = await visit(page);
  const repeat = await visit(page);
  const figures = { first, repeat, build: process.env.QAHUB_BIN ?? "target/debug/qahub" };
  fs.mkdirSync(path.join(__dirname, "..", "test-results"), { recursive: true });
  fs.writeFileSync(path.join(__dirname, "..", "test-results", "speed.json"), JSON.stringify(figures, null, 2));
  console.log(`time to interactive: first visit ${first.ms} ms, repeat visit ${repeat.ms} ms`);

  await expect(page.getByRole("heading", { name: "API Tokens" })).toBeVisible();
  // The bundle came compressed, and the second time from the browser's cache.
  expect(first.wasmEncoding).toMatch(/^(br|gzip)$/);
  expect(first.wasmTransfer).toBeGreaterThan(0);
  expect(first.wasmTransfer).toBeLessThan(first.wasmSize);
  expect(repeat.wasmTransfer).toBe(0);
});
