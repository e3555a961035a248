import { defineConfig } from "@playwright/test";
import * as path from "path";

// Each browser project gets its own server and SQLite file, so both can walk the
// first-run flow: once hydrated, once as plain HTML forms with JavaScript off.
const root = path.resolve(__dirname, "..");
const dataDir = process.env.QAHUB_E2E_DIR ?? path.join(__dirname, "test-results", "data");
const qahub = process.env.QAHUB_BIN ?? path.join(root, "target", "debug", "qahub");

export const servers = {
  hydrated: { port: 3110, db: path.join(dataDir, "hydrated.db") },
  "no-js": { port: 3111, db: path.join(dataDir, "no-js.db") },
};

const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
  ],
};

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"], ["json", { outputFile: "test-results/report.json" }]],
  use: {
    browserName: "chromium",
    launchOptions: chromium,
    trace: "retain-on-failure",
  },
  projects: Object.entries(servers).map(([name, s]) => ({
    name,
    use: {
      baseURL: `http://127.0.0.1:${s.port}`,
      javaScriptEnabled: name === "hydrated",
    },
  })),
  webServer: Object.values(servers).map((s) => ({
    command: `mkdir -p '${dataDir}' && rm -f '${s.db}' '${s.db}-wal' '${s.db}-shm' && exec '${qahub}' serve`,
    url: `http://127.0.0.1:${s.port}/readyz`,
    cwd: root,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
    env: {
      QAHUB_LISTEN: `127.0.0.1:${s.port}`,
      QAHUB_DATABASE_URL: `sqlite://${s.db}?mode=rwc`,
      QAHUB_BCRYPT_COST: "4",
      QAHUB_LOGIN_ATTEMPTS_PER_MINUTE: "1000",
      // The Trusted CI spec runs its own OIDC issuer on 127.0.0.1.
      QAHUB_OIDC_INSECURE_LOOPBACK: "true",
      LEPTOS_SITE_ROOT: path.join(root, "target", "site"),
    },
  })),
});
