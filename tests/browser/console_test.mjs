// The browser half of console_test.sh: Debian's headless chromium, driven by playwright-core,
// against a running relay. The environment says where: BASE_URL (the admin listener, ending in
// '/'), ADMIN_USER, ADMIN_PASSWORD, HTTP_PORT (the phones' HTTP listener's port),
// PHONE_MACS (two MACs the relay has seen), LATE_PHONE_MAC (a phone whose <mac>.cfg the origin
// has, that this script makes fetch it), HELD_CONFIG (a master config the relay holds back) and
// HELD_MISSING (the image it names that the origin lacks; this script releases the config by
// hand), CHROMIUM, ARTIFACTS_DIR (screenshots).
// Prints one FAIL line per failed check; exits 1 when any failed.
import {chromium} from 'playwright-core';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`FAIL: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const base = env('BASE_URL');
const credentials = {username: env('ADMIN_USER'), password: env('ADMIN_PASSWORD')};
const httpPort = env('HTTP_PORT');
const macs = env('PHONE_MACS').split(/\s+/);
const lateMac = env('LATE_PHONE_MAC');
const heldConfig = env('HELD_CONFIG');
const heldMissing = env('HELD_MISSING');
const artifacts = env('ARTIFACTS_DIR');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

let failures = 0;
let checks = 0;
const fail = (what) => { failures++; console.error(`FAIL: ${what}`); };
const check = (ok, what) => { if (ok) checks++; else fail(what); };
const expectEq = (what, expected, actual) =>
  check(JSON.stringify(expected) === JSON.stringify(actual),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
const shot = (page, name) => page.screenshot({path: path.join(artifacts, `${name}.png`), fullPage: true});
const step = (what) => console.log(`-- ${what}`);

// Runs one part of the test; a thrown error (a timeout waiting for an element, say) fails that
// part with a screenshot of where it stood, and the next part still runs.
async function part(name, page, fn) {
  step(name);
  try {
    await fn();
  } catch (e) {
    fail(`${name}: ${e.message.split('\n')[0]}`);
    if (page) await shot(page, `failed-${name.replace(/\W+/g, '-')}`).catch(() => {});
  }
}

// Chromium's sandbox needs user namespaces, which a root CI container does not give.
const browser = await chromium.launch({
  executablePath,
  args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
});
const pageErrors = [];
const newPage = async (options) => {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
  page.setDefaultTimeout(10000);
  return page;
};
const rowMacs = (page) =>
  page.$$eval('#devices-table tbody tr', (rows) => rows.map((r) => r.dataset.mac));

try {
  // Without credentials: 401 with a Basic challenge. (Through the context's request API: a page
  // load that meets a challenge it has no answer for ends in a navigation error in headless
  // chromium, not in a response.)
  await part('no credentials', null, async () => {
    const context = await browser.newContext();
    for (const what of ['', 'api/v1/devices', 'console.js']) {
      const response = await context.request.get(`${base}${what}`);
      expectEq(`GET /${what} without credentials: status`, 401, response.status());
      check(/^Basic /.test(response.headers()['www-authenticate'] || ''),
        `GET /${what} without credentials: no WWW-Authenticate: Basic`);
    }
    await context.close();
  });

  const page = await newPage({viewport: {width: 1280, height: 800}, httpCredentials: credentials});

  await part('overview', page, async () => {
    const response = await page.goto(base);
    expectEq('GET /: status', 200, response.status());
    await page.waitForSelector('#health-dot[data-health="ok"]');
    expectEq('overview: health', 'OK', await page.textContent('#ov-health'));
    check(/^v\d/.test(await page.textContent('#relay-version')), 'header: no version');
    check((await page.textContent('#ov-listeners')).includes('http'), 'overview: no http listener');
    check((await page.textContent('#ov-devices')).trim() === String(macs.length),
      `overview: device count is not ${macs.length}`);
    await page.waitForSelector('#chart-bytes svg');
    await page.waitForSelector('#chart-requests svg');
    await shot(page, 'overview-desktop');
  });

  await part('held configs', page, async () => {
    const item = `#held-list .held-config[data-path="${heldConfig}"]`;
    await page.waitForSelector(`#panel-held:not([hidden]) ${item}`);
    check((await page.textContent(`${item} .held-reason`)).includes(`${heldMissing}: not on the origin`),
      'held: the reason does not name the missing image');
    expectEq('held: the estimate while a file fails', 'unknown', await page.textContent(`${item} .held-eta`));
    const files = await page.$$eval(`${item} .held-file`, (rows) => rows.map((r) => ({
      path: r.dataset.path, state: r.dataset.state, done: r.querySelector('progress').position})));
    expectEq('held: the files it waits for', [
      {path: heldMissing, state: 'failed', done: 0},
      {path: 'site-v2.cfg', state: 'here', done: 1},
    ], [...files].sort((a, b) => a.path.localeCompare(b.path)));
    check((await page.textContent(`${item} .held-file[data-state="failed"] .held-error`)) === 'not on the origin',
      'held: the failed file does not say why');
    await shot(page, 'overview-held');

    const phone = await newPage({viewport: {width: 390, height: 844}, isMobile: true, hasTouch: true,
      deviceScaleFactor: 2, httpCredentials: credentials});
    await phone.goto(base);
    await phone.waitForSelector(`#panel-held:not([hidden]) ${item}`);
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `held, phone: the page is ${width} px wide, wider than the screen`);
    await (await phone.$('#panel-held')).scrollIntoViewIfNeeded();
    await shot(phone, 'overview-held-phone');
    await phone.context().close();

    const configs = async () => (await page.request.get(`${base}api/v1/configs`)).json();
    // "Release now" asks first; Cancel leaves the config held.
    await page.click(`${item} button[data-action="release"]`);
    await page.waitForSelector(`${item} button[data-action="confirm"]`);
    expectEq('held: the focus after "Release now"', 'cancel',
      await page.evaluate(() => document.activeElement.dataset.action));
    await shot(page, 'overview-held-confirm');
    await page.click(`${item} button[data-action="cancel"]`);
    await page.waitForSelector(`${item} button[data-action="release"]`);
    expectEq('held: still held after Cancel', [heldConfig], (await configs()).held.map((c) => c.path));

    await page.click(`${item} button[data-action="release"]`);
    await page.click(`${item} button[data-action="confirm"]`);
    await page.waitForSelector('#panel-held', {state: 'hidden'});
    check((await page.textContent('#held-note')).startsWith(`Released ${heldConfig}`),
      `held: no note after the release (${await page.textContent('#held-note')})`);
    // The gate publishes it with a catalog write: a moment.
    let after = await configs();
    for (let i = 0; i < 50 && after.released < 1; i++) {
      await page.waitForTimeout(100);
      after = await configs();
    }
    expectEq('held: the relay after the release', {held: [], released: 1},
      {held: after.held, released: after.released});
    await shot(page, 'overview-released');
  });

  await part('devices', page, async () => {
    await page.click('#nav-devices');
    for (const mac of macs) await page.waitForSelector(`#devices-table tr[data-mac="${mac}"]`);
    expectEq('devices: rows', macs.length, (await rowMacs(page)).length);
    // The VVX 500's master config names 5.9.8.1204; it runs 5.9.7.47435. The Edge's matches.
    await page.waitForSelector(`#devices-table tr[data-mac="${macs[0]}"] [data-flag="firmware-mismatch"]`);
    expectEq('devices: the Edge E450 is not flagged', 0,
      await page.locator(`#devices-table tr[data-mac="${macs[1]}"] [data-flag="firmware-mismatch"]`).count());
    await shot(page, 'devices');

    // Sort by MAC: the first click sorts ascending, the second flips it.
    const sorted = [...macs].sort();
    await page.click('#devices-table th[data-key="mac"] button');
    expectEq('devices: MAC header after one click', 'ascending',
      await page.getAttribute('#devices-table th[data-key="mac"]', 'aria-sort'));
    expectEq('devices: sorted by MAC ascending', sorted, await rowMacs(page));
    await page.click('#devices-table th[data-key="mac"] button');
    expectEq('devices: MAC header after two clicks', 'descending',
      await page.getAttribute('#devices-table th[data-key="mac"]', 'aria-sort'));
    expectEq('devices: sorted by MAC descending', [...sorted].reverse(), await rowMacs(page));
    await shot(page, 'devices-sorted');

    // Filter: by the second phone's model, as the relay reports it, then by a piece of a MAC.
    const devices = await (await page.request.get(`${base}api/v1/devices`)).json();
    const second = devices.find((d) => d.mac === macs[1]);
    const first = devices.find((d) => d.mac === macs[0]);
    check(second && first && second.model && second.model !== first.model,
      `devices: the two phones' models are not told apart (${first && first.model}, ${second && second.model})`);
    if (second && second.model) {
      await page.fill('#device-filter', second.model);
      expectEq(`devices: filtered by "${second.model}"`, [macs[1]], await rowMacs(page));
    }
    await page.fill('#device-filter', macs[0].slice(6));
    expectEq(`devices: filtered by "${macs[0].slice(6)}"`, [macs[0]], await rowMacs(page));
    await shot(page, 'devices-filtered');
    await page.fill('#device-filter', 'no-such-phone');
    expectEq('devices: filtered by a word no row has', [], await rowMacs(page));
    await page.fill('#device-filter', '');
    expectEq('devices: filter cleared', macs.length, (await rowMacs(page)).length);

    // Auto-refresh: a phone that boots while the page is open shows up within a refresh (5 s),
    // in the same document (the marker survives: no reload).
    await page.evaluate(() => { window.consoleTestMarker = 1; });
    const response = await fetch(`http://127.0.0.1:${httpPort}/${lateMac}.cfg`, {headers: {
      'User-Agent': `FileTransport PolycomVVX-VVX_311-UA/5.9.7.47435 (SN:${lateMac}) Type/Application`}});
    expectEq('a third phone fetches its <mac>.cfg', 200, response.status);
    await page.waitForSelector(`#devices-table tr[data-mac="${lateMac}"]`, {timeout: 8000});
    expectEq('devices: the third phone appeared without a reload', 1,
      await page.evaluate(() => window.consoleTestMarker));
  });

  await part('files', page, async () => {
    await page.click('#nav-files');
    await page.waitForSelector(`#files-table tr[data-path="${macs[0]}.cfg"]`);
    await shot(page, 'files');
  });

  await part('tools', page, async () => {
    await page.click('#nav-tools');
    await page.waitForSelector('#dhcp-list code');
    // What the relay says, shown as it says it; the phones' HTTP listener among them. (The host is
    // the relay's: a LAN address in place of the loopback this browser used.)
    const values = await page.$$eval('#dhcp-list code', (codes) => codes.map((c) => c.textContent));
    const tools = await (await page.request.get(`${base}api/v1/tools`)).json();
    expectEq('tools: the DHCP values shown', tools.urls.map((u) => u.dhcp_option), values);
    const http = new RegExp(`^http://([^/@]+@)?[^/@]+:${httpPort}/$`);
    check(values.some((v) => http.test(v)),
      `tools: no DHCP value for the HTTP listener (port ${httpPort}) in ${JSON.stringify(values)}`);
    await page.waitForSelector('#ca-box > *');
    await shot(page, 'tools');
  });

  await part('sync now', page, async () => {
    const read = () => page.evaluate(() => ({
      state: document.getElementById('sync-state').dataset.state,
      result: document.getElementById('sync-state').dataset.result,
      files: document.getElementById('sync-progress').value,
      filesMax: document.getElementById('sync-progress').max,
      bytes: document.getElementById('sync-bytes-progress').value,
    }));
    const before = await read();
    check(before.state !== 'running', 'sync: running before the button was pressed');
    await page.click('#sync-now');
    // Watch the page (not the API) until the pass ends: the bars must move while it runs.
    const seen = new Set();
    let last = before;
    let sawRunning = false;
    let midShot = false;
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      last = await read();
      if (last.state === 'running') {
        sawRunning = true;
        seen.add(`${last.files}/${last.bytes}`);
        if (!midShot && last.bytes > 0) {
          midShot = true;
          await shot(page, 'tools-sync-running');
        }
      } else if (sawRunning || ['error', 'failed'].includes(last.state)) {
        break;
      }
      await page.waitForTimeout(100);
    }
    check(sawRunning, 'sync: the page never showed the pass running');
    check(seen.size >= 2, `sync: the progress did not change while running (saw ${[...seen].join(', ')})`);
    expectEq('sync: the page at the end', {state: 'done', result: 'ok', files: 6, filesMax: 6},
      {state: last.state, result: last.result, files: last.files, filesMax: last.filesMax});
    check(!(await page.isDisabled('#sync-now')), 'sync: the button stays disabled after the pass');
    await shot(page, 'tools-sync-done');
  });

  await part('phone viewport', null, async () => {
    const phone = await newPage({viewport: {width: 390, height: 844}, isMobile: true, hasTouch: true,
      deviceScaleFactor: 2, httpCredentials: credentials});
    await phone.goto(base);
    await phone.waitForSelector('#health-dot[data-health="ok"]');
    await phone.waitForSelector('#chart-requests svg');
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `phone: the page is ${width} px wide, wider than the screen`);
    await shot(phone, 'overview-phone');
    await phone.goto(`${base}#devices`);
    await phone.waitForSelector(`#devices-table tr[data-mac="${macs[0]}"]`);
    await shot(phone, 'devices-phone');
    await phone.context().close();
  });

  check(pageErrors.length === 0, `the page logged errors: ${pageErrors.join(' | ')}`);
} finally {
  await browser.close();
}

console.log(`browser: ${checks} checks passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
