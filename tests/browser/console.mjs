// The web console (gateway/src/console) in a real Chromium, by the contract
// in the console's issue: sign-in, the calls list and one call, the route
// editor, roles, and the keyboard. Driven by tests/console_browser.rs, which
// starts PostgreSQL and the gateway, seeds one clinic call and creates the
// two accounts; it can also be run by hand against a running gateway.
//
// Environment:
//   BASE_URL                  the gateway's HTTP listener, e.g. http://127.0.0.1:8080
//   ADMIN_USER, ADMIN_PASS    an account with the admin role
//   VIEWER_USER, VIEWER_PASS  an account with the viewer role
//   SEED_CALL_ID              the seeded metformin refill call
//   SCREENSHOT_DIR            where calls-list.png, call-page.png (and failure-*.png) go
//   CHROMIUM                  the browser (default /usr/bin/chromium)
//
// Placing a SIP call is the driver's job (it has sipp): this script prints
//   @@place-call USER
// on stdout and waits for one line on stdin, "@@placed" or "@@failed REASON".
//
// Each check runs in its own browser context and prints "ok - NAME" or
// "not ok - NAME" with the reason; the exit code is 1 if any failed.

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const env = (name, fallback) => {
    const v = process.env[name] ?? fallback;
    if (v === undefined || v === '') {
        console.error(`console.mjs: set ${name}`);
        process.exit(2);
    }
    return v;
};

const BASE_URL = env('BASE_URL').replace(/\/$/, '');
const ADMIN = { user: env('ADMIN_USER'), pass: env('ADMIN_PASS') };
const VIEWER = { user: env('VIEWER_USER'), pass: env('VIEWER_PASS') };
const SEED_CALL_ID = env('SEED_CALL_ID');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const NEW_ROUTE = '4242';

mkdirSync(SCREENSHOT_DIR, { recursive: true });

class CheckFailed extends Error {}

function check(condition, message) {
    if (!condition) throw new CheckFailed(message);
}

/** A comment line in the output (what was seen, for the reader of a passing run). */
const note = (text) => console.log(`  # ${text}`);

const url = (path) => BASE_URL + path;
const pathOf = (page) => new URL(page.url()).pathname;

// ------------------------------------------------------------ the driver

let stdinLines;
async function nextStdinLine() {
    if (!stdinLines) {
        stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    }
    const { value, done } = await stdinLines.next();
    return done ? null : value.trim();
}

/** Asks the driver to phone USER through the gateway and waits for it. */
async function placeCall(user) {
    console.log(`@@place-call ${user}`);
    const answer = await nextStdinLine();
    check(answer === '@@placed', `the driver could not place the SIP call to ${user}: ${answer ?? 'stdin closed'}`);
}

// ------------------------------------------------------------- helpers

async function signIn(page, who) {
    await page.goto(url('/login'));
    await page.fill('#username', who.user);
    await page.fill('#password', who.pass);
    await page.click('#login button[type=submit]');
    await page.waitForLoadState();
    check(
        pathOf(page) === '/calls',
        `signing in as ${who.user} should land on /calls, got ${page.url()}: ${await alertText(page)}`,
    );
    await expectSignedInNav(page);
}

async function alertText(page) {
    const alert = page.locator('p[role=alert]');
    return (await alert.count()) ? await alert.first().innerText() : '(no p[role=alert] on the page)';
}

async function navLinks(page) {
    return (await page.locator('nav a').allInnerTexts()).map((t) => t.trim());
}

async function expectSignedInNav(page) {
    const links = await navLinks(page);
    for (const name of ['Calls', 'Health']) {
        check(links.includes(name), `the nav should link "${name}", has ${JSON.stringify(links)}`);
    }
    check(
        (await page.locator('form[action="/logout"] button', { hasText: 'Sign out' }).count()) === 1,
        'a signed-in page should have a "Sign out" button in <form action="/logout">',
    );
}

/** The text of each cell of the first row of #calls under a header named `name`, per row. */
async function columnTexts(page, name) {
    return page.evaluate((name) => {
        const table = document.querySelector('#calls');
        if (!table) return null;
        const heads = [...table.querySelectorAll('thead th, tr:first-child th')].map((th) =>
            th.textContent.trim().toLowerCase(),
        );
        const i = heads.indexOf(name.toLowerCase());
        if (i < 0) return null;
        return [...table.querySelectorAll('tr.call')].map((tr) => tr.cells[i]?.textContent.trim() ?? '');
    }, name);
}

// --------------------------------------------------------------- checks

/** a. The seeded call: found by medication, its turns, latency chart, chain and CSV. */
async function seededCall(page) {
    await signIn(page, ADMIN);
    await page.goto(url('/calls'));
    const filters = page.locator('form#filters');
    await filters.locator('[name=medication]').fill('metformin');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/[?&]medication=metformin/);

    const rows = page.locator('#calls tr.call');
    check(
        (await rows.count()) === 1,
        `filtering by medication "metformin" should list exactly the seeded call, got ${await rows.count()} rows`,
    );
    const link = page.locator(`#calls tr.call a.call-link[href="/calls/${SEED_CALL_ID}"]`);
    check((await link.count()) === 1, `the listed call should link /calls/${SEED_CALL_ID}`);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'calls-list.png'), fullPage: true });

    // The CSV export of the filtered list.
    const exportLink = page.locator('#export-csv');
    check((await exportLink.count()) === 1, 'the calls list should have a#export-csv');
    const [download] = await Promise.all([page.waitForEvent('download'), exportLink.click()]);
    const failure = await download.failure();
    check(failure === null, `the CSV download failed: ${failure}`);
    const csv = readFileSync(await download.path(), 'utf8');
    const lines = csv.split(/\r?\n/).filter((l) => l !== '');
    check(lines.length >= 1, 'the CSV export is empty');
    const header = lines[0].toLowerCase();
    check(
        header.includes('call_id') && /\bseq\b|turn/.test(header),
        `the CSV header should name call_id and the turn's seq: ${lines[0]}`,
    );
    const turnRows = lines.slice(1).filter((l) => l.includes(SEED_CALL_ID));
    check(turnRows.length >= 2, `the CSV should have the seeded call's turn rows, has ${turnRows.length}:\n${csv}`);
    // The seeded turns carry all seven timings, so their latency legs are not zero.
    const columns = lines[0].split(',');
    const legColumns = columns.flatMap((name, i) => (name.endsWith('_ms') ? [i] : []));
    check(legColumns.length >= 1, `the CSV header should have latency columns (…_ms): ${lines[0]}`);
    note(`CSV ${download.suggestedFilename()}: ${lines.length - 1} rows, ${lines[0]}`);
    const latencies = turnRows.map((row) => legColumns.map((i) => Number(row.split(',')[i])));
    check(
        latencies.every((legs) => legs.some((ms) => ms > 0)),
        `every seeded turn row should have a non-zero latency leg:\n${lines[0]}\n${turnRows.join('\n')}`,
    );

    await link.click();
    await page.waitForURL(url(`/calls/${SEED_CALL_ID}`));
    const turns = page.locator('#timeline li.turn');
    check((await turns.count()) >= 2, `the timeline should show the turns, has ${await turns.count()} li.turn`);
    const timeline = await page.locator('#timeline').innerText();
    check(timeline.includes('metformin'), `the timeline should show the corrected "metformin":\n${timeline}`);
    check(
        timeline.includes('met for men'),
        `the timeline should show what the recogniser heard ("met for men"):\n${timeline}`,
    );

    const legs = page.locator('#latency-chart rect.leg');
    check((await legs.count()) >= 1, 'the latency chart should have rect.leg bars');
    await legs.first().waitFor({ state: 'visible', timeout: 2000 }).catch(() => {});
    check(await legs.first().isVisible(), 'the first latency bar (#latency-chart rect.leg) should be visible');
    const widths = await legs.evaluateAll((rs) => rs.map((r) => r.getBoundingClientRect().width));
    check(widths.some((w) => w > 0), `the latency bars should have a width, got ${JSON.stringify(widths)}`);
    for (const leg of ['endpointing', 'recognition', 'dialogue', 'synthesis', 'send']) {
        const n = await page.locator(`#latency-chart rect.leg-${leg}`).count();
        check(n >= 1, `the latency chart should have a rect.leg-${leg} (all seven timings are seeded)`);
    }
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'call-page.png'), fullPage: true });

    note(`${await turns.count()} turns, ${await legs.count()} latency bars`);
    const chain = (await page.locator('#chain-status').innerText()).toLowerCase();
    check(chain.includes('verified') && !chain.includes('broken'), `#chain-status should say verified: ${chain}`);

    // Every label (turn names, totals, axis) must fit in the chart: an SVG
    // clips what overflows its box.
    const clipped = await page.locator('#latency-chart').evaluate((svg) => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')]
            .filter((t) => {
                const r = t.getBoundingClientRect();
                return r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1;
            })
            .map((t) => t.textContent.trim());
    });
    check(clipped.length === 0, `latency chart labels overflow the SVG and are cut off: ${JSON.stringify(clipped)}`);
}

/** b. An admin adds a route in the browser and a real SIP call uses it. */
async function addRouteAndCall(page) {
    await signIn(page, ADMIN);
    const links = await navLinks(page);
    for (const name of ['Routes', 'Trunks', 'Users', 'Access log']) {
        check(links.includes(name), `an admin's nav should link "${name}", has ${JSON.stringify(links)}`);
    }
    await page.goto(url('/admin/routes'));
    await page.click('#new-route');
    await page.waitForURL(url('/admin/routes/new'));
    const form = page.locator('form#route-form');
    await form.locator('[name=match]').fill(NEW_ROUTE);
    await form.locator('[name=app]').selectOption('echo');
    await form.getByRole('button', { name: 'Save route' }).click();
    await page.waitForLoadState();
    check(
        pathOf(page) === '/admin/routes',
        `saving the route should go back to /admin/routes, got ${page.url()}: ${await alertText(page)}`,
    );
    check(await page.locator('p[role=status]').isVisible(), 'saving a route should show a p[role=status] message');
    const listed = page.locator('#routes tr', { hasText: NEW_ROUTE });
    check((await listed.count()) >= 1, `#routes should list the new route "${NEW_ROUTE}"`);

    await placeCall(NEW_ROUTE);

    // The audit writer stores the call as it ends; allow it a moment.
    let routes = null;
    let rowTexts = [];
    for (let attempt = 0; attempt < 20; attempt++) {
        await page.goto(url('/calls'));
        routes = await columnTexts(page, 'Route');
        rowTexts = await page.locator('#calls tr.call').allInnerTexts();
        if (routes ? routes.includes(NEW_ROUTE) : rowTexts.some((t) => t.includes(NEW_ROUTE))) {
            note(`Route column after the call: ${JSON.stringify(routes)}`);
            return;
        }
        await page.waitForTimeout(250);
    }
    check(
        false,
        routes
            ? `the calls list should show a call on route "${NEW_ROUTE}"; its Route column: ${JSON.stringify(routes)}`
            : `the calls list should show a call on route "${NEW_ROUTE}" (no "Route" column found); rows: ${JSON.stringify(rowTexts)}`,
    );
}

/** c. The route form refuses bad input with an alert, server-side. */
async function routeValidation(page) {
    await signIn(page, ADMIN);
    await page.goto(url('/admin/routes/new'));
    const form = page.locator('form#route-form');
    // Skip the browser's own checks (required, type=number): this is about
    // what the server accepts.
    await form.evaluate((f) => {
        f.noValidate = true;
    });
    await form.locator('[name=match]').fill('');
    await form.locator('[name=answer_delay_ms]').evaluate((input, v) => {
        input.type = 'text';
        input.value = v;
    }, 'abc');
    const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        form.getByRole('button', { name: 'Save route' }).click(),
    ]);
    await page.waitForLoadState();
    check(response.status() === 400, `an empty match and answer_delay_ms "abc" should be a 400, got ${response.status()}`);
    const alert = page.locator('p[role=alert]');
    check(await alert.first().isVisible(), 'the 400 page should show p[role=alert]');
    const said = (await alert.first().innerText()).trim();
    check(said !== '', 'the alert should say what is wrong');
    note(`alert: ${said}`);
}

/** d. A viewer reads calls but gets a 403 on the admin pages. */
async function viewerRole(page) {
    await signIn(page, VIEWER);
    check(await page.locator('#calls').isVisible(), 'a viewer should see the #calls table');
    const links = await navLinks(page);
    check(!links.includes('Routes'), `a viewer's nav should not link "Routes": ${JSON.stringify(links)}`);
    const response = await page.goto(url('/admin/routes'));
    check(response.status() === 403, `a viewer opening /admin/routes should get 403, got ${response.status()}`);
    const body = await page.locator('body').innerText();
    check(body.includes('needs the admin role'), `the 403 page should say "needs the admin role":\n${body}`);

    await page.goto(url('/calls'));
    await page.locator('form[action="/logout"] button', { hasText: 'Sign out' }).click();
    await page.waitForLoadState();
    check(pathOf(page) === '/login', `signing out should land on /login, got ${page.url()}`);
    await page.goto(url('/calls'));
    check(pathOf(page) === '/login', `/calls after signing out should redirect to /login, got ${page.url()}`);
}

/** e. Signing in works with the keyboard alone, and the fields are labelled. */
async function keyboardSignIn(page) {
    const response = await page.goto(url('/calls'));
    check(pathOf(page) === '/login', `/calls without a session should redirect to /login, got ${page.url()}`);
    check(response.ok(), `the login page should load, got ${response.status()}`);
    check((await page.getByLabel('Username').getAttribute('id')) === 'username', 'the label "Username" should name #username');
    check((await page.getByLabel('Password').getAttribute('id')) === 'password', 'the label "Password" should name #password');

    const focused = () => page.evaluate(() => document.activeElement?.id ?? '');
    let presses = 0;
    while ((await focused()) !== 'username') {
        check(++presses <= 15, `Tab never reached #username within 15 presses (last focus: "${await focused()}")`);
        await page.keyboard.press('Tab');
    }
    note(presses ? `#username reached after ${presses} Tab presses` : '#username has the focus on load');
    await page.keyboard.type(ADMIN.user);
    await page.keyboard.press('Tab');
    check((await focused()) === 'password', `Tab from #username should reach #password, reached "${await focused()}"`);
    await page.keyboard.type(ADMIN.pass);
    await Promise.all([page.waitForURL(url('/calls')), page.keyboard.press('Enter')]);
    await expectSignedInNav(page);
}

/**
 * f. At 200 % zoom (a 640 px wide viewport is a 1280 px window zoomed to
 * 200 %) the pages reflow: nothing but wide tables scrolls sideways. Also
 * screenshots the health page and the routes page.
 */
async function zoomedAndOperatorPages(page) {
    await signIn(page, ADMIN);
    await page.goto(url('/health'));
    for (const card of ['Live calls', 'Calls per minute', 'Turn latency', 'Recogniser queue', 'Jitter-buffer loss', 'Database and spool']) {
        check(await page.getByRole('heading', { name: card }).isVisible(), `the health page should show "${card}"`);
    }
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'health.png'), fullPage: true });
    await page.goto(url('/admin/routes'));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'routes.png'), fullPage: true });
    await page.goto(url('/admin/access'));
    const access = await page.locator('#access').innerText();
    for (const action of ['session.sign_in', 'call.view', 'turns.export', 'route.create']) {
        check(access.includes(action), `the access log page should list ${action}:\n${access}`);
    }
    await page.goto(url('/admin/users'));
    const users = await page.locator('#users').innerText();
    check(users.includes(ADMIN.user) && users.includes(VIEWER.user), `the users page should list both accounts:\n${users}`);
    await page.goto(url('/admin/trunks/new'));
    check(await page.getByLabel('Allowed networks').isVisible(), 'the trunk form should label its networks field');

    await page.setViewportSize({ width: 640, height: 900 });
    for (const path of ['/calls', `/calls/${SEED_CALL_ID}`, '/health', '/admin/routes/new']) {
        await page.goto(url(path));
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        check(overflow <= 1, `${path} at 200 % zoom scrolls sideways by ${overflow} px`);
    }
    await page.goto(url(`/calls/${SEED_CALL_ID}`));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'call-page-200pct.png'), fullPage: true });
    note('no sideways scrolling at 640 px on /calls, a call, /health, the route form');
}

// ----------------------------------------------------------------- main

const checks = [
    ['a. admin finds the seeded metformin call: timeline, latency chart, chain, CSV', seededCall],
    ['b. admin adds route 4242 and a SIP call to 4242 is listed on it', addRouteAndCall],
    ['c. route form validation error shows p[role=alert]', routeValidation],
    ['d. viewer reads /calls, gets 403 "needs the admin role" on /admin/routes', viewerRole],
    ['e. keyboard-only sign-in (Tab/Enter)', keyboardSignIn],
    ['f. health, routes, access log, users and trunk pages; pages reflow at 200 % zoom', zoomedAndOperatorPages],
];

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
console.log(`# ${CHROMIUM} ${browser.version()} against ${BASE_URL}`);
let failed = 0;
for (const [i, [name, run]] of checks.entries()) {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    // The pages load nothing but their own stylesheet: a blocked resource or
    // a Content-Security-Policy violation shows up as a console error.
    const consoleErrors = [];
    page.on('console', (msg) => {
        if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.setDefaultTimeout(10_000);
    page.setDefaultNavigationTimeout(10_000);
    try {
        await run(page);
        const unexpected = consoleErrors.filter((e) => !/status of (401|403|400)/.test(e));
        check(unexpected.length === 0, `the browser console reported errors: ${JSON.stringify(unexpected)}`);
        console.log(`ok ${i + 1} - ${name}`);
    } catch (e) {
        failed++;
        const shot = join(SCREENSHOT_DIR, `failure-${i + 1}.png`);
        await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
        console.log(`not ok ${i + 1} - ${name}`);
        console.log(`  ${e instanceof CheckFailed ? e.message : e.stack}`.replaceAll('\n', '\n  '));
        console.log(`  at ${page.url()} (screenshot ${shot})`);
    }
    await context.close();
}
await browser.close();
console.log(`# ${checks.length - failed} of ${checks.length} passed`);
process.exit(failed ? 1 : 0);
