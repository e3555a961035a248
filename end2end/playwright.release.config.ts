import { defineConfig } from "@playwright/test";
import * as path from "path";

// The release binary as an operator deploys it: copied alone into an empty folder and
// started there, with no LEPTOS_SITE_ROOT. Its pages must come styled and hydrate from
// the site built into it (`scripts/test.sh` builds it with `--bin-features embed-site`).
const root = path.resolve(__dirname, "..");
export const releaseBin = process.env.QAHUB_RELEASE_BIN ?? path.join(root, "target", "release", "qahub");
const port = 3120;

export default defineConfig({
  testDir: "./release",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    },
  },
  webServer: {
    // A fresh folder each run; the default database (qahub.db) lands in it.
    command: `dir=$(mktemp -d -t qahub-one-binary-XXXXXX) && cp '${releaseBin}' "$dir/" && cd "$dir" && exec env -u LEPTOS_SITE_ROOT ./qahub serve`,
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
    env: { QAHUB_LISTEN: `127.0.0.1:${port}`, QAHUB_BCRYPT_COST: "4" },
  },
});
