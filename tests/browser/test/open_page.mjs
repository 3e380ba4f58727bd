// Opening the ops page over the local function URL (cargo-lambda's emulator in front of
// ops-api). Once in many runs the emulator answers the first GET with its own 500 in a few
// milliseconds, before the function sees the request (nothing in ops-api's log; bin/test,
// 2026-12-01). That is the emulator, not the page: try again, at most twice, and say so. Any
// other answer, and a 5xx that persists, is the test's to judge.
export async function openPage(page, url, log = console.log) {
  let response = await page.goto(url);
  for (let attempt = 1; attempt <= 2 && response && response.status() >= 500; attempt++) {
    log(`page load answered ${response.status()} (${(await response.text()).slice(0, 120)}); retry ${attempt}`);
    await new Promise((r) => setTimeout(r, 1000));
    response = await page.goto(url);
  }
  return response;
}
