// openPage over a scripted stand-in for a Playwright page (no browser): a load that the emulator
// spoils is retried, the script errors of the abandoned load are not counted, and those of the
// load that is kept are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openPage } from "./open_page.mjs";

// Each load: the status of app.js, the script errors the page reports, whether the login shows.
function scriptedPage(loads, pageErrors) {
  const listeners = new Set();
  let n = 0;
  return {
    loads: () => n,
    on: (_event, f) => listeners.add(f),
    off: (_event, f) => listeners.delete(f),
    async goto(url) {
      const load = loads[n++];
      for (const f of listeners) f({ status: () => 200, url: () => url });
      for (const f of listeners) f({ status: () => load.appJs, url: () => `${url}assets/app.js` });
      pageErrors.push(...load.errors);
      return { status: () => 200 };
    },
    async waitForFunction() {
      if (!loads[n - 1].login) throw new Error("timeout");
    },
  };
}

test("the script errors of a load the emulator spoiled are not counted once a retry loads cleanly", async () => {
  const pageErrors = [];
  const logged = [];
  const page = scriptedPage(
    [
      { appJs: 500, errors: ["$ is not defined"], login: false },
      { appJs: 200, errors: [], login: true },
    ],
    pageErrors,
  );
  const response = await openPage(page, "http://page/", { pageErrors, log: (l) => logged.push(l) });
  assert.equal(response.status(), 200);
  assert.equal(page.loads(), 2);
  assert.deepEqual(pageErrors, []);
  assert.match(logged.join("\n"), /500 http:\/\/page\/assets\/app\.js.*retry 1/);
  assert.match(logged.join("\n"), /abandoned load, not counted: \$ is not defined/);
});

test("the script errors of the load that is kept stay for the test to judge", async () => {
  const pageErrors = ["an error from before the page was opened"];
  const page = scriptedPage(
    [
      { appJs: 500, errors: ["$ is not defined"], login: false },
      { appJs: 200, errors: ["a real error of the page"], login: true },
    ],
    pageErrors,
  );
  await openPage(page, "http://page/", { pageErrors, log: () => {} });
  assert.deepEqual(pageErrors, ["an error from before the page was opened", "a real error of the page"]);
});

test("a load that stays broken keeps its errors after the last attempt", async () => {
  const pageErrors = [];
  const broken = { appJs: 500, errors: ["$ is not defined"], login: false };
  const page = scriptedPage([broken, broken, broken], pageErrors);
  await openPage(page, "http://page/", { pageErrors, log: () => {} });
  assert.equal(page.loads(), 3);
  assert.deepEqual(pageErrors, ["$ is not defined"]);
});
