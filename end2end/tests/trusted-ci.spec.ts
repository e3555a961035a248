import AxeBuilder from "@axe-core/playwright";
import { expect, test } from "@playwright/test";
import * as crypto from "crypto";
import * as http from "http";
import { AddressInfo } from "net";
import { Workspace, open, signIn, workspace } from "./helpers";

test.describe.configure({ mode: "serial" });

// This spec's own workspace (owner, member, project WEB), made before its tests.
let ws: Workspace;
test.beforeAll(async ({}, testInfo) => {
  ws = await workspace(testInfo, "trusted");
});

const AUDIENCE = "https://qa.test";

/** A local OIDC issuer: a discovery document and a JWKS with one RSA key, and RS256
 *  ID tokens shaped like GitHub Actions' signed with it. */
async function startIssuer() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "e2e", alg: "RS256", use: "sig" };
  const server = http.createServer((req, res) => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    res.setHeader("content-type", "application/json");
    if (req.url === "/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks` }));
    } else if (req.url === "/jwks") {
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const b64 = (v: object | Buffer) =>
    (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString("base64url");
  const sign = (run: string) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: url, aud: AUDIENCE, sub: "repo:acme/backend:ref:refs/heads/main", repository: "acme/backend",
      ref: "refs/heads/main", run_id: run, actor: "octocat", jti: crypto.randomUUID(), iat: now, nbf: now, exp: now + 300,
    };
    const data = `${b64({ alg: "RS256", typ: "JWT", kid: "e2e" })}.${b64(claims)}`;
    return `${data}.${b64(crypto.sign("sha256", Buffer.from(data), privateKey))}`;
  };
  return { url, sign, close: () => server.close() };
}

test("an owner trusts a CI job in the page, and the token it mints shows in the list", async ({ page }, testInfo) => {
  const issuer = await startIssuer();
  try {
    await signIn(page, testInfo, ws.owner.email, ws.owner.password);
    await expect(page).toHaveURL(/\/settings\/projects$/);
    await open(page, testInfo, "/settings/developer/trusted-ci");
    await expect(page.getByRole("heading", { name: "Trusted CI" })).toBeVisible();
    const name = `backend ${testInfo.project.name}`;
    await page.getByLabel("Name", { exact: true }).fill(name);
    await page.getByRole("combobox", { name: /^Issuer/ }).selectOption({ label: "Another issuer (URL below)" });
    await page.getByLabel("Issuer URL").fill(issuer.url);
    await page.getByLabel("Audience").fill(AUDIENCE);
    await page.getByLabel("Conditions").fill("repository=acme/backend\nref=refs/heads/*");
    await page.getByRole("checkbox", { name: /WEB/ }).check();
    await page.getByRole("button", { name: "Create policy" }).click();
    const row = page.getByRole("row", { name: new RegExp(name) });
    await expect(row).toContainText("repository=acme/backend");
    await expect(row).toContainText("active");
    if (testInfo.project.name === "hydrated") {
      const results = await new AxeBuilder({ page }).analyze();
      const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      expect(bad.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
    }

    // The CI job's side: an ID token for a ten-minute qh_ token.
    const run = `${Date.now()}`;
    // The job names its workspace: this hub has one per spec.
    const res = await page.request.post("/api/v1/oidc/token", { data: { id_token: issuer.sign(run), workspace: ws.tenant } });
    expect(res.status()).toBe(201);
    const minted = (await res.json()).data;
    expect(minted.token).toMatch(/^qh_[a-z0-9]{8}_[A-Za-z0-9]{40}$/);
    expect(minted.projects).toEqual(["WEB"]);

    await open(page, testInfo, "/settings/developer/api-tokens");
    await expect(page.getByText(`Minted for acme/backend@refs/heads/main (run ${run})`)).toBeVisible();

    // Disabled, the policy mints nothing.
    await open(page, testInfo, "/settings/developer/trusted-ci");
    await page.getByRole("button", { name: `Disable ${name}` }).click();
    await expect(page.getByRole("row", { name: new RegExp(name) })).toContainText("disabled");
    const refused = await page.request.post("/api/v1/oidc/token", {
      data: { id_token: issuer.sign(`${run}-2`), workspace: ws.tenant },
    });
    // Disabled, it trusts the issuer no more: exactly 401 oidc_invalid, nothing else.
    expect(refused.status()).toBe(401);
    expect((await refused.json()).error.code).toBe("oidc_invalid");
    await page.getByRole("button", { name: `Delete ${name}` }).click();
    await expect(page.getByRole("row", { name: new RegExp(name) })).toHaveCount(0);
  } finally {
    issuer.close();
  }
});
