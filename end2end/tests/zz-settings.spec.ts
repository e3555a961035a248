import AxeBuilder from "@axe-core/playwright";
import { expect, test } from "@playwright/test";
import { Workspace, open, qahub, ready, signIn, workspace } from "./helpers";

test.describe.configure({ mode: "serial" });

// This spec's own workspace (owner, member, project WEB), made before its tests.
let ws: Workspace;
test.beforeAll(async ({}, testInfo) => {
  ws = await workspace(testInfo, "settings");
});

test("the audit log lists token events, filters by action and is accessible", async ({ page }, testInfo) => {
  // A token made and revoked in this workspace, for the log to show.
  const auth = { Authorization: `Bearer ${ws.admin}` };
  const made = await page.request.post("/api/v1/tokens", { headers: auth, data: { name: "to revoke", scopes: ["read"], expires_in: "30d" } });
  expect(made.status()).toBe(201);
  const revoked = await page.request.post(`/api/v1/tokens/${(await made.json()).data.id}/revoke`, { headers: auth });
  expect(revoked.status()).toBe(200);
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, "/settings/audit-log");
  await expect(page.getByRole("heading", { name: "Audit log" })).toBeVisible();
  await expect(page.getByRole("row", { name: /token\.created/ }).first()).toBeVisible();
  await expect(page.getByRole("row", { name: /user\.login/ }).first()).toContainText(ws.owner.email);

  await page.getByLabel("Action").selectOption("token.revoked");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/action=token\.revoked/);
  const rows = page.getByRole("row");
  await expect(rows.nth(1)).toContainText("token.revoked");
  expect(await page.getByRole("row", { name: /token\.created/ }).count()).toBe(0);

  if (testInfo.project.name === "hydrated") {
    const results = await new AxeBuilder({ page }).analyze();
    const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    expect(bad.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
  }
});

test("the workspace IP allowlist refuses a lock-out and saves a good list", async ({ page }, testInfo) => {
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, "/settings/workspace");
  const list = page.getByLabel("IP allowlist");
  await list.fill("10.0.0.0/8");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByRole("alert")).toContainText("lock out");

  await ready(page, testInfo);
  await page.getByLabel("IP allowlist").fill("not-an-address");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByRole("alert")).toContainText("not an IP address");

  await ready(page, testInfo);
  await page.getByLabel("IP allowlist").fill("127.0.0.1\n192.0.2.0/24");
  await page.getByLabel("AI model").fill("gemini-2.0-flash");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByLabel("IP allowlist")).toHaveValue("127.0.0.1/32\n192.0.2.0/24");
  await expect(page.getByLabel("AI model")).toHaveValue("gemini-2.0-flash");

  // Leave it open again for other runs.
  await ready(page, testInfo);
  await page.getByLabel("IP allowlist").fill("");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByLabel("IP allowlist")).toHaveValue("");
});

test("a CI-only key, and the workspace's maximum token lifetime", async ({ page }, testInfo) => {
  const forever = `forever ${testInfo.project.name}`;
  qahub(testInfo, ["token", "create", "--tenant", ws.tenant, "--email", ws.owner.email, "--name", forever, "--scopes", "read"]);
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, "/settings/workspace");
  await page.getByLabel("Maximum token lifetime (days)").fill("30");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByLabel("Maximum token lifetime (days)")).toHaveValue("30");

  await open(page, testInfo, "/settings/developer/api-tokens");
  await expect(page.getByRole("row", { name: new RegExp(forever) })).toContainText("Beyond max lifetime");
  const create = page.getByRole("dialog", { name: "Create token" });
  const fill = async (expiration: string) => {
    await page.getByRole("button", { name: "Create token" }).click();
    await expect(create).toBeVisible();
    await ready(page, testInfo);
    await create.getByLabel("Name").fill(`CI-only ${testInfo.project.name}`);
    await create.getByRole("checkbox", { name: "write" }).check();
    await create.getByLabel("Expiration").selectOption({ label: expiration });
    await create.getByLabel("IP allowlist").fill("10.0.0.0/8");
    await create.getByRole("button", { name: "Create", exact: true }).click();
  };
  await fill("Never");
  await expect(create.getByRole("alert")).toContainText("at most 30 days");

  await open(page, testInfo, "/settings/developer/api-tokens");
  await fill("30 days");
  const reveal = page.getByRole("dialog", { name: "Copy your new token" });
  const token = await reveal.getByLabel("New token").inputValue();
  // This browser is not a CI runner in 10.0.0.0/8: the key is refused here.
  const res = await page.request.get("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(res.status()).toBe(403);
  expect((await res.json()).error.code).toBe("ip_not_allowed");
  await reveal.getByRole("button", { name: "Done" }).click();

  // No maximum again, for other runs.
  await open(page, testInfo, "/settings/workspace");
  await page.getByLabel("Maximum token lifetime (days)").fill("");
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByLabel("Maximum token lifetime (days)")).toHaveValue("");
});
