import { expect, Page, TestInfo } from "@playwright/test";
import { execFileSync } from "child_process";
import * as path from "path";
import { servers } from "../playwright.config";

export const OWNER = { tenant: "Acme QA", email: "owner@example.com", password: "correct horse battery" };
export const MEMBER = { email: "member@example.com", password: "member password 1" };

/** Whether this project runs with JavaScript (and so must hydrate). */
export function hydrated(testInfo: TestInfo): boolean {
  return testInfo.project.name === "hydrated";
}

/** Opens a page and, with JavaScript on, waits until the wasm bundle has hydrated it:
 *  clicks made before that would be lost. */
export async function open(page: Page, testInfo: TestInfo, url: string) {
  await page.goto(url);
  await ready(page, testInfo);
}

export async function ready(page: Page, testInfo: TestInfo) {
  if (hydrated(testInfo)) {
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  }
}

/** Runs the `qahub` binary against this project's database. */
export function qahub(testInfo: TestInfo, args: string[]): string {
  const server = servers[testInfo.project.name as keyof typeof servers];
  const root = path.resolve(__dirname, "..", "..");
  const bin = process.env.QAHUB_BIN ?? path.join(root, "target", "debug", "qahub");
  return execFileSync(bin, args, {
    env: { ...process.env, QAHUB_DATABASE_URL: `sqlite://${server.db}?mode=rwc`, QAHUB_BCRYPT_COST: "4" },
    encoding: "utf8",
  });
}

export async function signIn(page: Page, testInfo: TestInfo, email: string, password: string) {
  await open(page, testInfo, "/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Runs SQL on this project's SQLite file (to move a token's clock back in tests). */
export function sql(testInfo: TestInfo, statement: string) {
  const server = servers[testInfo.project.name as keyof typeof servers];
  execFileSync("sqlite3", [server.db, statement], { encoding: "utf8" });
}

export type Workspace = {
  tenant: string;
  owner: { email: string; password: string };
  member: { email: string; password: string };
  /** An admin token of the workspace, for setting things up through the API. */
  admin: string;
};

/** A workspace of the spec's own — its owner, a member and project WEB — made with the
 *  CLI and the API, so a spec runs alone as well as in the suite, and never depends on
 *  what another spec left behind. */
export async function workspace(testInfo: TestInfo, spec: string): Promise<Workspace> {
  const slug = `${spec}-${testInfo.project.name}`;
  const tenant = `${spec} ${testInfo.project.name}`;
  const owner = { email: `owner-${slug}@example.com`, password: "correct horse battery" };
  const member = { email: `member-${slug}@example.com`, password: "member password 1" };
  qahub(testInfo, ["admin", "bootstrap", "--tenant", tenant, "--email", owner.email, "--password", owner.password]);
  qahub(testInfo, ["admin", "add-user", "--tenant", tenant, "--email", member.email, "--password", member.password, "--role", "member"]);
  const admin = qahub(testInfo, [
    "token", "create", "--tenant", tenant, "--email", owner.email, "--name", "setup", "--scopes", "admin", "--expires", "30d",
  ]).trim();
  const res = await fetch(`${testInfo.project.use.baseURL}/api/v1/projects`, {
    method: "POST",
    headers: { Authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ key: "WEB", name: "Website" }),
  });
  if (res.status !== 201) throw new Error(`creating project WEB answered ${res.status}`);
  return { tenant, owner, member, admin };
}
