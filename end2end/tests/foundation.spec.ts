import { expect, test } from "@playwright/test";
import { hydrated, MEMBER, open, OWNER, qahub, ready, signIn } from "./helpers";

// One story per project, in order: first-run setup, sign-in, projects, roles.
test.describe.configure({ mode: "serial" });

test("first run: / leads to setup, which creates the owner and signs them in", async ({ page }, testInfo) => {
  await open(page, testInfo, "/");
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByRole("heading", { name: "Set up QA Hub" })).toBeVisible();

  // A bad field is answered on the page, whichever way the form was sent.
  // (Only spaces pass the browser's own `required` check; the server refuses them.)
  await page.getByLabel("Workspace name").fill("   ");
  await page.getByLabel("Email").fill(OWNER.email);
  await page.getByLabel("Password").fill(OWNER.password);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page.getByRole("alert")).toHaveText("Enter a workspace name.");

  await ready(page, testInfo);
  await page.getByLabel("Workspace name").fill(OWNER.tenant);
  await page.getByLabel("Email").fill(OWNER.email);
  await page.getByLabel("Password").fill(OWNER.password);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await expect(page.getByRole("heading", { name: "Projects" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Settings" })).toContainText("API Tokens");
});

test("the page is hydrated with JavaScript, and plain HTML without", async ({ page }, testInfo) => {
  await page.goto("/login");
  const body = page.locator("body");
  if (hydrated(testInfo)) {
    await expect(body).toHaveAttribute("data-hydrated", "true");
    // The wasm bundle was really fetched and ran.
    const wasm = await page.evaluate(() =>
      performance.getEntriesByType("resource").some((e) => /\/pkg\/qahub\.[\w-]+\.wasm$/.test(e.name)),
    );
    expect(wasm).toBe(true);
  } else {
    await page.waitForLoadState("networkidle");
    // Without JavaScript the page's scripts never ran. The browser may still preload the
    // wasm (a <link rel=preload>), so the check is the hydration mark itself, read once
    // the network has settled — when, with JavaScript, the hydrated branch above sees it.
    expect(await body.getAttribute("data-hydrated")).toBeNull();
  }
});

test("the stylesheet is served and applied", async ({ page }, testInfo) => {
  await open(page, testInfo, "/login");
  // The build's content hash is in the name, so browsers may keep it for a year.
  const href = await page.locator('link[rel="stylesheet"]').getAttribute("href");
  expect(href).toMatch(/^\/pkg\/qahub\.[\w-]+\.css$/);
  const css = await page.request.get(href!);
  expect(css.status()).toBe(200);
  expect(css.headers()["content-type"]).toContain("text/css");
  expect(css.headers()["cache-control"]).toBe("public, max-age=31536000, immutable");
  expect(css.headers()["content-encoding"]).toMatch(/^(br|gzip)$/);
  // The sign-in card gets its border from the stylesheet.
  await expect(page.locator("form.card")).toHaveCSS("border-top-style", "solid");
});

test("setup is refused once done", async ({ page }, testInfo) => {
  await open(page, testInfo, "/setup");
  await expect(page.getByRole("status")).toHaveText("QA Hub is already set up.");
  await expect(page.getByRole("button", { name: "Create workspace" })).toHaveCount(0);
});

test("sign-in: a wrong password is refused, the right one lets in, sign-out ends it", async ({ page }, testInfo) => {
  await signIn(page, testInfo, OWNER.email, "wrong password");
  await expect(page.getByRole("alert")).toHaveText("The email or password is incorrect.");
  await expect(page).toHaveURL(/\/login/);

  await signIn(page, testInfo, OWNER.email, OWNER.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await open(page, testInfo, "/settings/projects");
  await expect(page).toHaveURL(/\/login$/);
});

test("an owner creates projects; duplicates and bad keys get clear errors", async ({ page }, testInfo) => {
  await signIn(page, testInfo, OWNER.email, OWNER.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await ready(page, testInfo);

  await page.getByLabel("Key").fill("web");
  await page.getByLabel("Name").fill("Website");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByRole("row", { name: /WEB\s+Website/ })).toBeVisible();

  await ready(page, testInfo);
  await page.getByLabel("Key").fill("WEB");
  await page.getByLabel("Name").fill("Again");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByRole("alert")).toHaveText("A project with key WEB already exists.");

  await ready(page, testInfo);
  await page.getByLabel("Key").fill("1X");
  await page.getByLabel("Name").fill("Bad key");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByRole("alert")).toContainText("2 to 10 characters");
  await expect(page.getByRole("row")).toHaveCount(2); // header + WEB
});

test("a member sees the projects but no create form", async ({ page }, testInfo) => {
  qahub(testInfo, [
    "admin", "add-user", "--tenant", OWNER.tenant, "--email", MEMBER.email,
    "--password", MEMBER.password, "--role", "member",
  ]);
  await signIn(page, testInfo, MEMBER.email, MEMBER.password);
  await expect(page).toHaveURL(/\/settings\/projects$/);
  await expect(page.getByRole("row", { name: /WEB\s+Website/ })).toBeVisible();
  await expect(page.getByRole("button", { name: "Create project" })).toHaveCount(0);
});
