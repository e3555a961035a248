import AxeBuilder from "@axe-core/playwright";
import { expect, Locator, Page, test, TestInfo } from "@playwright/test";
import { Workspace, open, qahub, ready, signIn, workspace } from "./helpers";

test.describe.configure({ mode: "serial" });

// This spec's own workspace (owner, member, project WEB), made before its tests.
let ws: Workspace;
test.beforeAll(async ({}, testInfo) => {
  ws = await workspace(testInfo, "tokens");
});

const LIST = "/settings/developer/api-tokens";
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

async function shoot(page: Page, testInfo: TestInfo, name: string) {
  for (const [label, size] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
    await page.setViewportSize(size);
    await page.screenshot({ path: testInfo.outputPath(`${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

async function noSeriousA11yIssues(page: Page, what: string) {
  // axe runs as page script, which the JavaScript-off project forbids; the markup is
  // the same server-rendered HTML in both projects.
  if (test.info().project.name !== "hydrated") return;
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.help}`), `axe on ${what}`).toEqual([]);
}

/** Clicks a row action: they sit in the row's "Actions" menu (a <details>). */
async function action(row: Locator, name: string) {
  const button = row.getByRole("button", { name, exact: true });
  if (!(await button.isVisible())) await row.locator("summary").click();
  await button.click();
}

async function noSideScroll(page: Page, what: string) {
  for (const size of [DESKTOP, PHONE]) {
    await page.setViewportSize(size);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    expect(scroll, `${what} at ${size.width} px`).toBeLessThanOrEqual(client);
  }
  await page.setViewportSize(DESKTOP);
}

async function callMe(page: Page, token: string) {
  return page.request.get("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
}

test("an owner creates a project token, reads it once, and takes it through its life", async ({ page }, testInfo) => {
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  await expect(page.getByRole("heading", { name: "API Tokens" })).toBeVisible();
  await noSeriousA11yIssues(page, "the token list");

  await page.getByRole("button", { name: "Create token" }).click();
  const create = page.getByRole("dialog", { name: "Create token" });
  await expect(create).toBeVisible();
  await ready(page, testInfo);
  const name = `CI ${testInfo.project.name}`;
  await create.getByLabel("Name").fill(name);
  await create.getByRole("checkbox", { name: "write" }).check();
  await create.getByRole("checkbox", { name: "read" }).check(); // already ticked with JavaScript
  await create.getByRole("radio", { name: "Specific projects" }).check();
  await create.getByRole("checkbox", { name: /WEB/ }).check();
  await create.getByLabel("Expiration").selectOption({ label: "30 days" });
  await noSeriousA11yIssues(page, "the create dialog");
  await shoot(page, testInfo, "create-dialog");
  await create.getByRole("button", { name: "Create", exact: true }).click();

  const reveal = page.getByRole("dialog", { name: "Copy your new token" });
  await expect(reveal).toBeVisible();
  await expect(reveal).toContainText("will not be shown again");
  const token = await reveal.getByLabel("New token").inputValue();
  expect(token).toMatch(/^qh_[a-z0-9]{8}_[A-Za-z0-9]{40}$/);
  await expect(reveal.getByRole("button", { name: "Copy" })).toBeVisible();
  await noSeriousA11yIssues(page, "the reveal dialog");
  await shoot(page, testInfo, "reveal-dialog");
  if (testInfo.project.name === "hydrated") {
    // A stray Escape does not dismiss the reveal.
    await reveal.getByLabel("New token").press("Escape");
    await expect(reveal).toBeVisible();
  }

  const me = await callMe(page, token);
  expect(me.status()).toBe(200);
  const body = await me.json();
  expect(body.scopes).toEqual(["read", "write"]);
  expect(body.token.projects).toEqual(["WEB"]);
  expect(me.headers()["qahub-token-expires-at"]).toBeTruthy();

  await reveal.getByRole("button", { name: "Done" }).click();
  await expect(page.getByRole("dialog")).toHaveCount(0);
  await ready(page, testInfo);
  expect(await page.content()).not.toContain(token.slice(12));

  const row = page.getByRole("row", { name: new RegExp(name) });
  await expect(row).toContainText(`qh_${token.slice(3, 11)}_…`);
  await expect(row).toContainText("WEB");
  await expect(row).toContainText("Active");
  await shoot(page, testInfo, "token-list");
  await noSideScroll(page, "the token list");
  // Every row action is reachable by keyboard: the menu opens with Enter.
  await row.locator("summary").focus();
  await page.keyboard.press("Enter");
  await expect(row.getByRole("button", { name: "Rotate", exact: true })).toBeVisible();
  await page.keyboard.press("Enter"); // closes it again

  await action(row, "Disable");
  await expect(row).toContainText("Disabled");
  let res = await callMe(page, token);
  expect(res.status()).toBe(401);
  expect((await res.json()).error.code).toBe("disabled_token");

  await ready(page, testInfo);
  await action(row, "Enable");
  await expect(row).toContainText("Active");
  expect((await callMe(page, token)).status()).toBe(200);

  await ready(page, testInfo);
  await action(row, "Revoke");
  const confirm = page.getByRole("dialog", { name: "Revoke token" });
  await expect(confirm).toContainText(name);
  await confirm.getByRole("button", { name: "Revoke token" }).click();
  await expect(row).toContainText("Revoked");
  res = await callMe(page, token);
  expect(res.status()).toBe(401);
  expect((await res.json()).error.code).toBe("revoked_token");

  // Reloading shows only the prefix.
  await page.reload();
  expect(await page.content()).not.toContain(token.slice(12));
});

test("rotation shows the new token once and keeps the old one until the new is used", async ({ page }, testInfo) => {
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  const name = `nightly ${testInfo.project.name}`;
  const old = qahub(testInfo, [
    "token", "create", "--tenant", ws.tenant, "--email", ws.owner.email, "--name", name, "--scopes", "read",
  ]).trim();
  await open(page, testInfo, LIST);
  const row = page.getByRole("row", { name: new RegExp(name) });
  await action(row, "Rotate");
  const dialog = page.getByRole("dialog", { name: "Rotate token" });
  await ready(page, testInfo);
  await dialog.getByRole("button", { name: "Rotate token" }).click();
  const reveal = page.getByRole("dialog", { name: "Copy your new token" });
  const fresh = await reveal.getByLabel("New token").inputValue();
  expect(fresh).not.toBe(old);
  expect((await callMe(page, old)).status()).toBe(200);
  await reveal.getByRole("button", { name: "Done" }).click();

  // Until the new token is used, the old row says it is retiring, and from where it was last used.
  const oldRow = page.getByRole("row", { name: new RegExp(`qh_${old.slice(3, 11)}_`) });
  await expect(async () => {
    await open(page, testInfo, LIST);
    await expect(oldRow).toContainText(/Retiring — last used from 127\.0\.0\.1 at \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/, { timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  expect((await callMe(page, fresh)).status()).toBe(200);
  expect((await callMe(page, old)).status()).toBe(401);
  await open(page, testInfo, LIST);
  await expect(oldRow).toContainText("Revoked");
  await expect(oldRow).not.toContainText("Retiring");
});

test("a bad create is answered in the dialog", async ({ page }, testInfo) => {
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  await page.getByRole("button", { name: "Create token" }).click();
  const create = page.getByRole("dialog", { name: "Create token" });
  await ready(page, testInfo);
  await create.getByLabel("Name").fill("   ");
  await create.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("dialog", { name: "Create token" }).getByRole("alert")).toHaveText("Enter a token name.");
});

test("a member sees the list without actions, and the server refuses their create", async ({ page, browser }, testInfo) => {
  await signIn(page, testInfo, ws.member.email, ws.member.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  await expect(page.getByRole("row", { name: /CI/ }).first()).toBeVisible();
  await expect(page.getByRole("button", { name: "Create token" })).toHaveCount(0);
  // Row actions sit in closed menus: count them hidden or shown.
  const revokes = (p: typeof page) => p.getByRole("button", { name: "Revoke", includeHidden: true });
  await expect(revokes(page)).toHaveCount(0);
  await expect(page.locator("details.row-menu")).toHaveCount(0);
  // The same query finds the owner's actions: it would see a member's, were there any.
  const owner = await browser.newPage({
    baseURL: testInfo.project.use.baseURL,
    javaScriptEnabled: testInfo.project.use.javaScriptEnabled,
  });
  await signIn(owner, testInfo, ws.owner.email, ws.owner.password);
  await open(owner, testInfo, LIST);
  await expect(owner.getByRole("row", { name: /CI/ }).first()).toBeVisible();
  expect(await revokes(owner).count()).toBeGreaterThan(0);
  await owner.close();
  const res = await page.request.post("/_qh/tokens/issue", {
    form: { name: "sneaky", "scopes[]": "read" },
  });
  expect(res.status()).toBe(403);
  expect((await res.json()).code).toBe("forbidden");
});

test("the login page has no serious accessibility issues", async ({ page }, testInfo) => {
  await open(page, testInfo, "/login");
  await noSeriousA11yIssues(page, "the login page");
});

test("the token's page carries its actions, with the list's dialogs", async ({ page }, testInfo) => {
  const name = `page actions ${testInfo.project.name}`;
  qahub(testInfo, ["token", "create", "--tenant", ws.tenant, "--email", ws.owner.email, "--name", name, "--scopes", "read"]);
  await signIn(page, testInfo, ws.owner.email, ws.owner.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await open(page, testInfo, LIST);
  await page.getByRole("link", { name }).click();
  await ready(page, testInfo);
  await expect(page.getByRole("heading", { name })).toBeVisible();
  const tokenPage = page.url();
  await noSideScroll(page, "the token's page");
  const actions = page.getByRole("region", { name: "Token actions" });
  await expect(actions.getByRole("button", { name: "Rename" })).toBeVisible();
  await actions.getByRole("button", { name: "Rotate" }).click();
  await expect(page.getByRole("dialog", { name: "Rotate token" })).toBeVisible();

  await open(page, testInfo, tokenPage);
  await page.getByRole("region", { name: "Token actions" }).getByRole("button", { name: "Disable" }).click();
  await expect(page.getByRole("row", { name: new RegExp(name) })).toContainText("Disabled");
  await open(page, testInfo, tokenPage);
  await expect(page.getByRole("region", { name: "Token actions" }).getByRole("button", { name: "Enable" })).toBeVisible();
});
