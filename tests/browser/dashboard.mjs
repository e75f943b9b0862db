// Drives the system chromium (headless, through playwright-core) against a running tally
// with demo data, and checks that the dashboard shows the API's numbers.
//
//   TALLY_URL=http://127.0.0.1:4000 node tests/browser/dashboard.mjs
//
// Environment: TALLY_URL (required), CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR
// (default: a new folder under the system temp dir; printed). Exits non-zero on the first
// failed check, printing what differed. tests/browser.rs starts the server and runs this.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = (process.env.TALLY_URL || '').replace(/\/$/, '');
if (!BASE) {
  console.error('TALLY_URL is not set (e.g. http://127.0.0.1:4000)');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'tally-dashboard-'));
fs.mkdirSync(SHOTS, { recursive: true });
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const TIMEOUT = 90_000;

let passed = 0;
function ok(what) {
  passed += 1;
  console.log('ok   ' + what);
}

async function api(query, variables = {}) {
  const res = await fetch(BASE + '/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const json = await res.json();
  if (json.errors) throw new Error('the API answered errors: ' + JSON.stringify(json.errors));
  return json.data;
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});

// A page that records console errors, uncaught exceptions and any request to a host that is
// not the loopback (such requests are aborted and fail the run).
async function open(url, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push('console error: ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('uncaught exception: ' + e.message));
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if ((u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'ws:' || u.protocol === 'wss:') && !LOOPBACK.has(u.hostname)) {
      problems.push('request to a non-loopback host: ' + u.href);
      return route.abort();
    }
    return route.continue();
  });
  await page.goto(BASE + url);
  return {
    page,
    context,
    problems,
    async close() {
      assert.deepEqual(problems, [], 'the page at ' + url + ' had problems');
      await context.close();
    },
  };
}

async function ready(page, panel) {
  await page.waitForSelector(`#${panel}[data-state="ready"], #${panel}[data-state="error"]`, { timeout: TIMEOUT });
  const state = await page.getAttribute('#' + panel, 'data-state');
  if (state !== 'ready') {
    const status = await page.textContent(`#${panel} .status`);
    throw new Error(`${panel} shows an error: ${status}`);
  }
}

async function shot(page, name) {
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log('screenshot: ' + file);
}

async function tiles(page) {
  return page.$$eval('#tiles .tile', (ts) => ts.map((t) => ({
    stage: t.dataset.stage,
    count: Number(t.dataset.count),
    before: Number(t.dataset.before),
    shown: Number(t.querySelector('.value').textContent.replace(/[^0-9]/g, '')),
  })));
}

async function checkTiles(page, t, t0, what) {
  const api1 = await api('query($t: String, $t0: String) { saas { a: stageCounts(asOf: $t) { stage count } b: stageCounts(asOf: $t0) { stage count } } }', { t, t0 });
  const shown = await tiles(page);
  assert.deepEqual(shown.map((x) => x.stage), api1.saas.a.map((x) => x.stage), what + ': stages');
  for (const [i, s] of api1.saas.a.entries()) {
    assert.equal(shown[i].count, s.count, `${what}: ${s.stage} tile`);
    assert.equal(shown[i].shown, s.count, `${what}: ${s.stage} tile text`);
    assert.equal(shown[i].before, api1.saas.b[i].count, `${what}: ${s.stage} tile's earlier count`);
  }
  return api1.saas.a;
}

async function sankey(page, id) {
  return page.evaluate((id) => {
    const c = window.echarts.getInstanceByDom(document.getElementById(id));
    const s = c.getOption().series[0];
    return {
      nodes: s.data.map((n) => ({ id: n.name, count: n.value })),
      links: s.links.map((l) => ({ source: l.source, target: l.target, count: l.value })),
    };
  }, id);
}

// The drawing has every node and every link of at least one user (a link of none would be a
// hairline), with the API's counts.
function drawable(flow) {
  return { nodes: flow.nodes, links: flow.links.filter((l) => l.count > 0) };
}

async function checkJourney(page, t, cohort, what) {
  const j = (await api('query($t: String, $c: SaasCohort) { saas { journey(asOf: $t, cohort: $c) { nodes { id count } links { source target count } } } }', { t, c: cohort })).saas.journey;
  const drawn = await sankey(page, 'journey-chart');
  assert.deepEqual(drawn, drawable(j), what + ': journey Sankey');
  assert.ok(drawn.links.length > 0, what + ': the journey has links');
  const buttons = await page.$$eval('#journey-nodes button', (bs) => bs.map((b) => ({ id: b.dataset.node, count: Number(b.dataset.count) })));
  assert.deepEqual(buttons, j.nodes, what + ': journey node list');
  return j;
}

const started = Date.now();
try {
  // ------------------------------------------------------------------ lifecycle
  {
    const t = '2025-01-01T00:00:00Z';
    const t0 = '2024-12-01T00:00:00Z';
    const cohort = { from: '2024-01-01T00:00:00Z', to: '2024-04-01T00:00:00Z' };
    const url = `/dashboard?page=lifecycle&asOf=${t}&cohortFrom=2024-01&cohortTo=2024-04`;
    const p = await open(url);
    const { page } = p;
    for (const panel of ['panel-tiles', 'panel-conversion', 'panel-churn', 'panel-journey', 'panel-transitions']) await ready(page, panel);
    const counts = await checkTiles(page, t, t0, 'lifecycle at ' + t);
    assert.ok(counts.some((c) => c.count > 0), 'the demo data has users at ' + t);
    ok('stage tiles equal stageCounts at ' + t + ' and their change since ' + t0);
    const j = await checkJourney(page, t, cohort, 'lifecycle');
    assert.ok(j.nodes[0].count > 0, 'the cohort is not empty');
    ok(`journey Sankey nodes and links equal journey(cohort 2024-01..2024-04, asOf ${t}) (${j.nodes[0].count} users)`);
    const tr = (await api('query($a: String!, $b: String!, $c: SaasCohort) { saas { transitions(from: $a, to: $b, cohort: $c) { nodes { id count } links { source target count } } } }', { a: t0, b: t, c: cohort })).saas.transitions;
    assert.deepEqual(await sankey(page, 'transitions-chart'), drawable(tr), 'transitions Sankey');
    ok('transitions Sankey equals transitions(' + t0 + ' → ' + t + ')');
    const conv = (await api('query($t: String, $w: SaasWhere) { saas { metrics(asOf: $t, where: $w) { lifecycleUsers leadToProspectRate prospectToCustomerRate leadToCustomerRate } } }',
      { t, w: { signupCohort: { gte: cohort.from, lt: cohort.to } } })).saas.metrics[0];
    for (const k of ['lifecycleUsers', 'leadToProspectRate', 'prospectToCustomerRate', 'leadToCustomerRate']) {
      const v = await page.getAttribute(`#conversion-kpis [data-metric="${k}"]`, 'data-value');
      assert.equal(v, conv[k] === null ? '' : String(conv[k]), 'conversion ' + k);
    }
    ok('cohort conversion equals the saas metrics for the cohort');
    const churn = JSON.parse(await page.getAttribute('#churn-chart', 'data-values'));
    const lastMonth = (await api('{ saas { metrics(asOf: "2025-01-01T00:00:00Z") { customerChurnRate } } }')).saas.metrics[0].customerChurnRate;
    assert.equal(churn.length, 12, '12 months of churn (asOf is a month start: no partial month)');
    assert.equal(churn[11], lastMonth, 'churn of 2024-12 = customerChurnRate as of 2025-01-01');
    ok('churn trend ends with customerChurnRate as of ' + t);

    // Drill-down: a Sankey node lists its users, paged.
    // "No shop yet" is the cohort's leads (SEMANTICS §2, consistent demo data).
    const lead = j.nodes.find((n) => n.id === 'NO_SHOP_YET');
    assert.ok(lead.count > 0, 'the cohort has leads');
    await page.click('#journey-nodes button[data-node="NO_SHOP_YET"]');
    await ready(page, 'panel-users');
    const users = (await api('query($t: String, $c: SaasCohort) { saas { users(asOf: $t, stage: LEAD, cohort: $c, limit: 25) { totalCount edges { node { userId stage shops { shopId } } } } } }', { t, c: cohort })).saas.users;
    assert.equal(users.totalCount, lead.count, '"No shop yet" = the cohort\'s LEAD users');
    assert.equal(await page.getAttribute('#panel-users', 'data-total'), String(users.totalCount), 'users total');
    const ids = await page.$$eval('#users-table td[data-key="userId"]', (tds) => tds.map((td) => td.dataset.value));
    assert.deepEqual(ids, users.edges.map((e) => e.node.userId), 'users of the node');
    ok(`clicking "No shop yet" lists its ${users.totalCount} users (the cohort's leads)`);
    // The transitions' "to:CUSTOMER" node, clicked on the canvas where the chart drew it.
    const at = await page.evaluate(() => {
      const dom = document.getElementById('transitions-chart');
      const data = window.echarts.getInstanceByDom(dom).getModel().getSeriesByIndex(0).getData();
      const l = data.getItemLayout(data.indexOfName('to:CUSTOMER'));
      const box = dom.getBoundingClientRect();
      return { x: box.left + l.x + l.dx / 2, y: box.top + l.y + l.dy / 2 };
    });
    await page.mouse.click(at.x, at.y);
    await ready(page, 'panel-users');
    const customers = (await api('query($t: String, $c: SaasCohort) { saas { users(asOf: $t, stage: CUSTOMER, cohort: $c, limit: 25) { totalCount edges { node { userId } } } } }', { t, c: cohort })).saas.users;
    assert.equal(customers.totalCount, tr.nodes.find((n) => n.id === 'to:CUSTOMER').count, 'to:CUSTOMER = CUSTOMER users at T');
    assert.equal(await page.getAttribute('#panel-users', 'data-total'), String(customers.totalCount));
    const cids = await page.$$eval('#users-table td[data-key="userId"]', (tds) => tds.map((td) => td.dataset.value));
    assert.deepEqual(cids, customers.edges.map((e) => e.node.userId), 'users of to:CUSTOMER');
    ok(`clicking the transitions' "Customer" node lists its ${customers.totalCount} users`);
    await shot(page, 'lifecycle');

    // Time travel with the slider (keyboard): one month back.
    await page.waitForSelector('body[data-slider="ready"]');
    await page.focus('#asof-slider');
    await page.keyboard.press('ArrowLeft');
    await page.waitForSelector('body[data-asof="2024-12-01T00:00:00Z"]');
    await ready(page, 'panel-tiles');
    await ready(page, 'panel-journey');
    const moved = await checkTiles(page, '2024-12-01T00:00:00Z', '2024-11-01T00:00:00Z', 'after the slider');
    assert.notDeepEqual(moved, counts, 'moving asOf changes the stage counts');
    await checkJourney(page, '2024-12-01T00:00:00Z', cohort, 'after the slider');
    assert.ok(page.url().includes('asOf=2024-12-01T00%3A00%3A00Z'), 'asOf is in the URL: ' + page.url());
    ok('the slider moves asOf to 2024-12-01 and every number follows the API');

    // Time travel with the picker: any instant.
    await page.fill('#asof-input', '2024-06-15T12:00:00');
    await page.dispatchEvent('#asof-input', 'change');
    await page.waitForSelector('body[data-asof="2024-06-15T12:00:00Z"]');
    await ready(page, 'panel-tiles');
    await ready(page, 'panel-journey');
    await checkTiles(page, '2024-06-15T12:00:00Z', '2024-05-15T12:00:00Z', 'after the picker');
    await checkJourney(page, '2024-06-15T12:00:00Z', cohort, 'after the picker');
    await ready(page, 'panel-churn');
    const partial = JSON.parse(await page.getAttribute('#churn-chart', 'data-values'));
    assert.equal(partial.length, 13, 'a mid-month asOf adds the month to date');
    // The month to date is incomplete: drawn dashed, from the last complete month on.
    const dashed = await page.evaluate(() => window.echarts.getInstanceByDom(document.getElementById('churn-chart')).getOption()
      .series.filter((s) => s.lineStyle && s.lineStyle.type === 'dashed').map((s) => s.data.map((v) => v !== null && v !== undefined)));
    assert.deepEqual(dashed, [partial.map((_, i) => i >= 11)], 'the incomplete month is dashed');
    ok('the picker moves asOf to 2024-06-15T12:00:00Z and every number follows the API; the month to date is dashed');
    await p.close();
  }

  // ------------------------------------------------------------------ gym
  {
    const t = '2025-06-01T00:00:00Z';
    const p = await open(`/dashboard?page=gym&asOf=${t}&conversionFilter=ALL`);
    const { page } = p;
    const q = 'query($t: String, $f: GymConversionFilter) { gym { all: metrics(asOf: $t, conversionFilter: $f) { leads clients conversionRate medianDaysToConvert } branches: metrics(asOf: $t, conversionFilter: $f) { branchName conversionRate leads clients } } }';
    const check = async (f) => {
      for (const panel of ['panel-gym-kpis', 'panel-gym-branches', 'panel-gym-months']) await ready(page, panel);
      const a = await api(q, { t, f });
      for (const k of ['leads', 'clients', 'conversionRate', 'medianDaysToConvert']) {
        const v = await page.getAttribute(`#gym-kpis [data-metric="${k}"]`, 'data-value');
        assert.equal(v, a.gym.all[0][k] === null ? '' : String(a.gym.all[0][k]), `gym ${f} ${k}`);
      }
      const rows = await page.$$eval('#gym-branch-table tbody tr', (trs) => trs.map((tr) => ({
        branchName: tr.querySelector('[data-key="branchName"]').dataset.value,
        conversionRate: tr.querySelector('[data-key="conversionRate"]').dataset.value,
      })));
      const want = a.gym.branches.map((b) => ({ branchName: b.branchName, conversionRate: b.conversionRate === null ? '' : String(b.conversionRate) }));
      const byName = (x, y) => x.branchName.localeCompare(y.branchName);
      assert.deepEqual(rows.slice().sort(byName), want.slice().sort(byName), `gym ${f} rates by branch`);
      assert.ok(rows.length > 0, 'branches are shown');
      const bars = await page.evaluate(() => window.echarts.getInstanceByDom(document.getElementById('gym-branch-chart')).getOption().series[0].data);
      assert.deepEqual(bars.slice().reverse().map(String), rows.map((r) => r.conversionRate), `gym ${f} bars`);
      return a;
    };
    const all = await check('ALL');
    ok('gym rates (ALL) equal the API');
    await page.check('input[name="conversion-filter"][value="MEMBERSHIP"]');
    await page.waitForURL(/conversionFilter=MEMBERSHIP/);
    const mem = await check('MEMBERSHIP');
    assert.notDeepEqual(mem.gym.all, all.gym.all, 'the filter switch changes the numbers');
    ok('switching the conversion filter to MEMBERSHIP shows the API\'s MEMBERSHIP rates');
    await page.check('input[name="conversion-filter"][value="USER_CREDIT"]');
    await page.waitForURL(/conversionFilter=USER_CREDIT/);
    await check('USER_CREDIT');
    ok('… and USER_CREDIT');
    await shot(page, 'gym');
    await p.close();
  }

  // ------------------------------------------------------------------ explore
  {
    const t = '2025-01-01T00:00:00Z';
    const p = await open(`/dashboard?page=explore&asOf=${t}&model=shop&metrics=netSales,orders&dims=categoryName`);
    const { page } = p;
    await ready(page, 'panel-explore-form');
    await ready(page, 'panel-explore');
    const tableRows = async (pg) => pg.$$eval('#ex-table tbody tr', (trs) => trs.map((tr) =>
      Object.fromEntries(Array.from(tr.querySelectorAll('td')).map((td) => [td.dataset.key, td.dataset.value]))));
    const str = (rows) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? '' : String(v)])));
    const want = str((await api('{ shop { metrics(asOf: "2025-01-01T00:00:00Z", limit: 500) { categoryName netSales orders } } }')).shop.metrics);
    assert.ok(want.length > 1, 'several categories');
    assert.deepEqual(await tableRows(page), want, 'explore table');
    ok(`explore table equals shop.metrics by categoryName (${want.length} rows)`);
    const sql = await page.textContent('#ex-sql');
    assert.match(sql, /SELECT/i, 'the SQL from extensions.explain is shown');
    ok('the SQL from extensions.explain is shown');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ex-csv')]);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
    assert.deepEqual(csv[0], ['categoryName', 'netSales', 'orders'], 'CSV header');
    assert.deepEqual(csv.slice(1), want.map((r) => [r.categoryName, r.netSales, r.orders]), 'CSV rows');
    ok(`the CSV download has the same ${want.length} rows`);

    // Build a view with the form: a time dimension, a filter; then reopen its URL.
    await page.check('#d-orderTime');
    await page.selectOption('#ex-grain', 'QUARTER');
    await page.click('#ex-add-filter');
    const cat = want[0].categoryName;
    await page.selectOption('[data-filter="0"] select >> nth=0', 'categoryName');
    await page.selectOption('[data-filter="0"] select >> nth=1', 'equals');
    await page.fill('[data-filter="0"] input', cat);
    await page.dispatchEvent('[data-filter="0"] input', 'change');
    await page.waitForURL(/filters=/);
    await ready(page, 'panel-explore');
    const q = `query($w: ShopWhere) { shop { metrics(asOf: "${t}", where: $w, limit: 500) { categoryName orderTime(granularity: QUARTER) netSales orders isComplete } } }`;
    const filtered = str((await api(q, { w: { categoryName: { equals: cat } } })).shop.metrics);
    assert.ok(filtered.length > 1, 'several quarters');
    const shown = await tableRows(page);
    assert.deepEqual(shown, filtered, 'explore table with a time dimension and a filter');
    const lines = await page.evaluate(() => window.echarts.getInstanceByDom(document.getElementById('ex-chart')).getOption().series.map((s) => s.type));
    assert.ok(lines.every((x) => x === 'line'), 'a time dimension draws lines');
    ok(`explore with orderTime by QUARTER and categoryName = "${cat}" equals the API (${filtered.length} rows)`);
    await shot(page, 'explore');

    const shared = page.url();
    const p2 = await open(shared.slice(BASE.length));
    await ready(p2.page, 'panel-explore');
    assert.deepEqual(await tableRows(p2.page), shown, 'the shared URL reopens the same view');
    assert.equal(await p2.page.isChecked('#d-orderTime'), true);
    assert.equal(await p2.page.inputValue('#ex-grain'), 'QUARTER');
    ok('the shared URL reopens the same view: ' + shared.slice(BASE.length));
    await p2.close();

    // A bad filter says what is wrong, in words, with the API's code.
    await page.fill('[data-filter="0"] input', '');
    await page.selectOption('[data-filter="0"] select >> nth=0', 'orderTime');
    await page.fill('[data-filter="0"] input', 'yesterday');
    await page.dispatchEvent('[data-filter="0"] input', 'change');
    await page.waitForSelector('#panel-explore[data-state="error"]');
    const err = await page.textContent('#panel-explore .status');
    assert.match(err, /yesterday/, 'the error names the bad value: ' + err);
    assert.match(err, /\[[A-Z_]+\]/, 'the error carries its code: ' + err);
    ok('a bad filter shows the API\'s error in words: ' + err.split('\n')[0]);
    await p.close();
  }

  // ------------------------------------------------------------------ phone width
  {
    const p = await open('/dashboard?page=lifecycle&asOf=2025-01-01T00:00:00Z', { width: 390, height: 844 });
    await ready(p.page, 'panel-tiles');
    await ready(p.page, 'panel-journey');
    const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, 'no horizontal scrolling at 390 px (overflow ' + overflow + ' px)');
    ok('usable at a phone width (390 px): no horizontal scrolling');
    await shot(p.page, 'lifecycle-phone');
    await p.close();
  }

  // ------------------------------------------------------------------ explorer links here
  {
    const p = await open('/');
    const href = await p.page.getAttribute('a[href="dashboard"]', 'href', { timeout: 10_000 });
    assert.equal(href, 'dashboard');
    ok('the explorer page links to the dashboard');
    await p.close();
  }
} catch (e) {
  console.error('FAILED: ' + (e && e.stack ? e.stack : e));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(`${passed} passed, 0 failed (${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SHOTS})`);
