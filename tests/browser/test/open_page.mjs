// Opening the ops page over the local function URL (cargo-lambda's emulator in front of
// ops-api). Now and then the emulator answers one of the page's requests (the page itself or one
// of its scripts) with its own 500 in a few milliseconds, before the function sees it (nothing in
// ops-api's log; bin/test, 2026-12-01, twice in four runs: once the page, once assets/app.js,
// which left the page without its login form). That is the emulator, not the page: load it
// again, at most twice, and say so. The page is ready when its own script has shown the login
// form or the app. Anything else, and a failure that persists, is the test's to judge.
//
// `pageErrors` is the test's list of the page's script errors. The errors of a load that is
// abandoned and retried are taken out of it (and logged): they belong to a page nobody uses
// (2026-12-02: app.js answered 500 on the first load, whose inline script then failed with
// "$ is not defined", and the test failed on that error although the retried load was clean).
// Errors of the load that is kept stay in it for the test to judge.
const ATTEMPTS = 3;
const READY_MS = 15000;

export async function openPage(page, url, { pageErrors = [], log = console.log } = {}) {
  let response = null;
  const errorsBefore = pageErrors.length;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) {
      // Just before the next load: whatever the abandoned page still reported is in.
      const abandoned = pageErrors.splice(errorsBefore);
      if (abandoned.length > 0) log(`script errors of the abandoned load, not counted: ${abandoned.join("; ")}`);
    }
    const failed = [];
    const onResponse = (r) => {
      if (r.status() >= 500) failed.push(`${r.status()} ${r.url()}`);
    };
    page.on("response", onResponse);
    response = await page.goto(url);
    const ready =
      response !== null &&
      response.status() < 500 &&
      (await page
        .waitForFunction(
          () => {
            const shown = (id) => {
              const e = document.getElementById(id);
              return e !== null && !e.hidden;
            };
            return shown("login") || shown("app");
          },
          null,
          { timeout: READY_MS },
        )
        .then(
          () => true,
          () => false,
        ));
    page.off("response", onResponse);
    if (ready && failed.length === 0) return response;
    if (attempt === ATTEMPTS) break;
    log(`page load incomplete (${failed.join(", ") || "the page's script never showed the login"}); retry ${attempt}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return response;
}
