import { expect, test } from "@playwright/test";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { releaseBin } from "../playwright.release.config";

// The server under test was copied alone into an empty folder (playwright.release.config.ts).

test("the copied binary serves styled pages that hydrate", async ({ page }) => {
  const assets: { url: string; status: number; type: string; encoding: string; cache: string }[] = [];
  page.on("response", async (res) => {
    if (new URL(res.url()).pathname.startsWith("/pkg/")) {
      const h = await res.allHeaders();
      assets.push({
        url: res.url(),
        status: res.status(),
        type: h["content-type"] ?? "",
        encoding: h["content-encoding"] ?? "identity",
        cache: h["cache-control"] ?? "",
      });
    }
  });
  await page.goto("/");
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByRole("heading", { name: "Set up QA Hub" })).toBeVisible();
  // Hydrated: the wasm ran and marked the page.
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  // Styled: the stylesheet's colours, not the browser's defaults.
  const html = await page.evaluate(() => {
    const s = getComputedStyle(document.documentElement);
    return { background: s.backgroundColor, color: s.color };
  });
  expect(html).toEqual({ background: "rgb(246, 248, 250)", color: "rgb(27, 31, 36)" });

  // Every file the page referenced came from the binary: the script, the wasm and the
  // stylesheet, compressed, under one build name, cached for a year.
  const kinds = ["js", "wasm", "css"].map((ext) => assets.find((a) => new URL(a.url).pathname.endsWith(`.${ext}`)));
  for (const a of kinds) {
    expect(a, JSON.stringify(assets)).toBeDefined();
    expect(a!.status).toBe(200);
    expect(a!.url).toMatch(/\/pkg\/qahub\.[0-9a-f]{16}\.(js|wasm|css)$/);
    expect(a!.encoding).toBe("br");
    expect(a!.cache).toBe("public, max-age=31536000, immutable");
  }
  expect(kinds.map((a) => a!.type)).toEqual(["text/javascript", "application/wasm", "text/css"]);

  // The public files too, revalidated by ETag.
  const icon = await page.request.get("/favicon.svg");
  expect(icon.status()).toBe(200);
  expect(icon.headers()["content-type"]).toBe("image/svg+xml");
  const again = await page.request.get("/favicon.svg", { headers: { "If-None-Match": icon.headers()["etag"] } });
  expect(again.status()).toBe(304);
  // Nothing else is served from the folder it runs in (its database lies there).
  expect((await page.request.get("/qahub.db")).status()).toBe(404);
  expect((await page.request.get("/pkg/qahub.0000000000000000.wasm")).status()).toBe(404);
});

test("an override pointing at an empty folder is refused, saying what is missing", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qahub-empty-site-"));
  const out = spawnSync(releaseBin, ["serve", "--listen", "127.0.0.1:0"], {
    cwd: dir,
    env: { ...process.env, LEPTOS_SITE_ROOT: dir, QAHUB_DATABASE_URL: `sqlite://${dir}/qahub.db?mode=rwc` },
    timeout: 30_000,
    encoding: "utf8",
  });
  expect(out.status).not.toBe(0);
  const line = out.stderr.trim().split("\n").pop() ?? "";
  expect(line).toMatch(/^error: the pages would load without their files: .* missing from /);
  for (const ext of ["js", "wasm", "css"]) expect(line).toMatch(new RegExp(`qahub[\\w.-]*\\.${ext}\\b`));
  expect(line).toContain(path.join(dir, "pkg"));
  expect(fs.existsSync(path.join(dir, "qahub.db"))).toBe(false);
  fs.rmSync(dir, { recursive: true, force: true });
});
