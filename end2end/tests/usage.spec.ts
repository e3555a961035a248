import AxeBuilder from "@axe-core/playwright";
import { expect, Page, test, TestInfo } from "@playwright/test";
import { Workspace, open, qahub, ready, signIn, sql, workspace } from "./helpers";

test.describe.configure({ mode: "serial" });

// This spec's own workspace (owner, member, project WEB), made before its tests.
let ws: Workspace;
test.beforeAll(async ({}, testInfo) => {
  ws = await workspace(testInfo, "usage");
});

const LIST = "/settings/developer/api-tokens";

function token(testInfo: TestInfo, email: string, name: string, scopes: string, owner = "user"): string {
  return qahub(testInfo, [
    "token", "create", "--tenant", ws.tenant, "--email", email, "--name", name, "--scopes", scopes, "--owner", owner,
  ]).trim();
}

async function call(page: Page, token: string, path: string) {
  return page.request.get(`/api/v1${path}`, { headers: { Authorization: `Bearer ${token}` } });
}

async function a11y(page: Page, testInfo: TestInfo, what: string) {
  if (testInfo.project.name !== "hydrated") return;
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.help}`), `axe on ${what}`).toEqual([]);
}

test("a token's page charts its use, lists its addresses, and one click reduces an unneeded scope", async ({ page }, testInfo) => {
  const name = `Dashboard ${testInfo.project.name}`;
  const secret = token(testInfo, ws.owner.email, name, "write");
  for (let i = 0; i < 3; i++) expect((await call(page, secret, "/projects")).status()).toBe(200);
  // A month old, and it only ever read.
  sql(testInfo, `UPDATE api_tokens SET created_at = created_at - 31 * 86400 WHERE prefix = '${secret.slice(3, 11)}'`);

  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  const row = page.getByRole("row", { name: new RegExp(name) });
  await expect(row).toContainText("Only read requests in 30 days.");
  await expect(row.getByRole("button", { name: `Reduce to read: ${name}` })).toBeVisible();

  await row.getByRole("link", { name }).click();
  await expect(page).toHaveURL(/\/settings\/developer\/api-tokens\/[0-9a-f-]+$/);
  await ready(page, testInfo);
  await expect(page.getByRole("heading", { name, level: 1 })).toBeVisible();
  const chart = page.getByRole("img", { name: /Requests per day over the last 30 days: 3 read, 0 write, 0 admin/ });
  await expect(chart).toBeVisible();
  expect(await page.locator("svg .day").count()).toBe(30);
  await expect(page.getByRole("table").getByRole("row", { name: /127\.0\.0\.1/ })).toBeVisible();
  await a11y(page, testInfo, "the token's page");

  await page.getByRole("button", { name: `Reduce to read: ${name}` }).click();
  await expect(page.getByRole("definition").filter({ hasText: /^read$/ })).toBeVisible();
  await expect(page.getByText("Only read requests in 30 days.")).toHaveCount(0);
  const res = await page.request.post("/api/v1/projects", {
    headers: { Authorization: `Bearer ${secret}` },
    data: { key: "NOPE", name: "Nope" },
  });
  expect(res.status()).toBe(403);
  expect((await call(page, secret, "/projects")).status()).toBe(200);
});

test("a workspace token is made from the dialog, and the list names the owner", async ({ page }, testInfo) => {
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  await page.getByRole("button", { name: "Create token" }).click();
  const create = page.getByRole("dialog", { name: "Create token" });
  await ready(page, testInfo);
  const name = `Service ${testInfo.project.name}`;
  await create.getByLabel("Name").fill(name);
  await create.getByRole("checkbox", { name: "read" }).check(); // already ticked with JavaScript
  await create.getByRole("radio", { name: "Owned by the workspace" }).check();
  await create.getByRole("button", { name: "Create", exact: true }).click();
  const reveal = page.getByRole("dialog", { name: "Copy your new token" });
  await expect(reveal).toBeVisible();
  await reveal.getByRole("button", { name: "Done" }).click();
  await expect(page.getByRole("row", { name: new RegExp(name) })).toContainText("Workspace");
  await expect(page.getByRole("row", { name: /Dashboard/ }).first()).toContainText(ws.owner.email);
});

test("suspending a person first shows which tokens stop; workspace tokens keep working", async ({ page }, testInfo) => {
  const email = `ops-${testInfo.project.name}@example.com`;
  qahub(testInfo, ["admin", "add-user", "--tenant", ws.tenant, "--email", email, "--password", "ops password 1", "--role", "admin"]);
  const own = token(testInfo, email, "Ops script", "read");
  const service = token(testInfo, email, "Ops nightly", "read", "workspace");

  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, "/settings/members");
  await expect(page.getByRole("heading", { name: "Members" })).toBeVisible();
  await a11y(page, testInfo, "the members page");
  await page.getByRole("link", { name: `Suspend ${email}` }).click();
  await expect(page.getByRole("heading", { name: `Suspend ${email}?` })).toBeVisible();
  await ready(page, testInfo);
  const stopping = page.getByRole("region", { name: "API tokens that will stop working" });
  await expect(stopping.getByRole("listitem")).toHaveCount(1);
  await expect(stopping).toContainText("Ops script");
  await expect(stopping).not.toContainText("Ops nightly");
  await expect(stopping).toContainText("1 workspace token(s) they created keep working.");
  await a11y(page, testInfo, "the suspension preview");
  expect((await call(page, own, "/me")).status()).toBe(200);

  await page.getByRole("button", { name: `Suspend ${email}` }).click();
  await expect(page).toHaveURL(/\/settings\/members$/);
  const row = page.getByRole("row", { name: new RegExp(email) });
  await expect(row).toContainText("Suspended");
  const refused = await call(page, own, "/me");
  expect(refused.status()).toBe(403);
  expect((await refused.json()).error.code).toBe("user_suspended");
  expect((await call(page, service, "/me")).status()).toBe(200);

  await ready(page, testInfo);
  await row.getByRole("button", { name: "Reactivate" }).click();
  await expect(page.getByRole("row", { name: new RegExp(email) })).toContainText("Active");
  expect((await call(page, own, "/me")).status()).toBe(200);
});
