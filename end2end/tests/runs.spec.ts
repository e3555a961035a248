import AxeBuilder from "@axe-core/playwright";
import { expect, Page, test } from "@playwright/test";
import * as fs from "fs";
import * as path from "path";
import { Workspace, open, qahub, signIn, workspace } from "./helpers";

test.describe.configure({ mode: "serial" });

// This spec's own workspace (owner, member, project WEB), made before its tests.
let ws: Workspace;
test.beforeAll(async ({}, testInfo) => {
  ws = await workspace(testInfo, "runs");
});

const JUNIT = fs.readFileSync(path.resolve(__dirname, "../../server/tests/fixtures/pytest-junit.xml"));

async function noSideScroll(page: Page, what: string) {
  for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await page.setViewportSize(size);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    expect(scroll, `${what} at ${size.width} px`).toBeLessThanOrEqual(client);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

test("an uploaded run has a page: counts, the failing test first, filters, no 404s", async ({ page }, testInfo) => {
  const token = qahub(testInfo, ["token", "create", "--tenant", ws.tenant, "--email", ws.owner.email, "--name", `runs ${testInfo.project.name}`, "--scopes", "write"]).trim();
  const res = await page.request.post("/api/v1/projects/WEB/runs/import?format=junit&name=nightly&branch=main&commit=abc1234&build_url=https://ci.example.com/builds/7", {
    headers: { Authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
    data: JUNIT,
  });
  expect(res.status()).toBe(201);
  const run = (await res.json()).data;

  const missing: string[] = [];
  page.on("response", (r) => {
    if (r.status() === 404) missing.push(r.url());
  });
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, "/projects");
  await expect(page.getByRole("heading", { name: "Test runs" })).toBeVisible();
  await expect(page.getByRole("link", { name: "nightly" }).first()).toBeVisible();
  await noSideScroll(page, "/projects");

  await open(page, testInfo, "/projects/WEB");
  await expect(page.getByRole("row", { name: /nightly/ }).first()).toContainText("1 failed");
  await noSideScroll(page, "/projects/WEB");

  await open(page, testInfo, `/projects/WEB/runs/${run.id}`);
  await expect(page.getByRole("heading", { name: "nightly" })).toBeVisible();
  await expect(page.locator(".lead")).toContainText("2 passed · 1 failed · 1 skipped · 1 errors");
  const rows = page.locator("table.results tbody tr");
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toContainText("test_applies_discount");
  await expect(rows.first()).toContainText("discount should be 10%");
  await expect(rows.nth(1)).toContainText("error");
  await expect(page.getByRole("link", { name: "https://ci.example.com/builds/7" })).toBeVisible();
  await noSideScroll(page, "the run page");
  if (testInfo.project.name === "hydrated") {
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    expect(bad.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  }

  // The filter is a plain GET form: the same with JavaScript off.
  await page.getByLabel("Outcome").selectOption({ label: "Skipped" });
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=skipped/);
  await expect(page.locator("table.results tbody tr")).toHaveCount(1);
  await expect(page.locator("table.results tbody tr")).toContainText("test_pays_with_card");

  expect(missing, "nothing on these pages answers 404 (the favicon included)").toEqual([]);
});
