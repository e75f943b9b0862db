// The tally dashboard. It uses only tally's public GraphQL API (POST `graphql`, relative to
// the page) and Apache ECharts (loaded before this file as the global `echarts`). Every
// panel is asked again when asOf changes; the view's state lives in the query string, so a
// link reproduces it. Each panel carries data-state="loading|ready|error" and says in words
// what went wrong when a request fails.
(function () {
  'use strict';

  var ENDPOINT = new URL('graphql', document.baseURI).href;
  var TIMEOUT_MS = 60000;
  // Okabe–Ito: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
  var STAGES = ['LEAD', 'PROSPECT', 'CUSTOMER', 'CHURNED'];
  var STAGE_COLOUR = { LEAD: '#56B4E9', PROSPECT: '#E69F00', CUSTOMER: '#009E73', CHURNED: '#D55E00' };
  var STAGE_NAME = { LEAD: 'Leads', PROSPECT: 'Prospects', CUSTOMER: 'Customers', CHURNED: 'Churned' };
  var USERS_PAGE = 25;
  var CHURN_MONTHS = 12;

  // ---------------------------------------------------------------- state (the URL)

  function list(s) {
    return s ? s.split(',').filter(function (x) { return x !== ''; }) : [];
  }

  function readState() {
    var p = new URLSearchParams(location.search);
    var filters = [];
    try {
      var f = JSON.parse(p.get('filters') || '[]');
      if (Array.isArray(f)) filters = f.filter(function (x) { return x && typeof x.dim === 'string'; });
    } catch (e) { filters = []; }
    return {
      page: ['lifecycle', 'gym', 'explore'].indexOf(p.get('page')) >= 0 ? p.get('page') : 'lifecycle',
      asOf: p.get('asOf') || '',
      compare: p.get('compare') || '',
      cohortFrom: p.get('cohortFrom') || '',
      cohortTo: p.get('cohortTo') || '',
      conversionFilter: p.get('conversionFilter') || 'ALL',
      tz: p.get('tz') || '',
      model: p.get('model') || '',
      metrics: list(p.get('metrics')),
      dims: list(p.get('dims')),
      grain: p.get('grain') || 'MONTH',
      variant: p.get('variant') || '',
      limit: p.get('limit') || '500',
      filters: filters,
    };
  }

  var state = readState();

  function writeState() {
    var p = new URLSearchParams();
    p.set('page', state.page);
    if (state.asOf) p.set('asOf', state.asOf);
    if (state.page === 'lifecycle') {
      if (state.compare) p.set('compare', state.compare);
      if (state.cohortFrom) p.set('cohortFrom', state.cohortFrom);
      if (state.cohortTo) p.set('cohortTo', state.cohortTo);
    } else if (state.page === 'gym') {
      p.set('conversionFilter', state.conversionFilter);
      if (state.tz) p.set('tz', state.tz);
    } else {
      if (state.model) p.set('model', state.model);
      if (state.metrics.length) p.set('metrics', state.metrics.join(','));
      if (state.dims.length) p.set('dims', state.dims.join(','));
      p.set('grain', state.grain);
      if (state.tz) p.set('tz', state.tz);
      if (state.variant) p.set('variant', state.variant);
      if (state.limit) p.set('limit', state.limit);
      if (state.filters.length) p.set('filters', JSON.stringify(state.filters));
    }
    history.replaceState(null, '', '?' + p.toString());
  }

  // ---------------------------------------------------------------- time

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  // RFC 3339 in UTC, whole seconds.
  function iso(d) { return d.toISOString().slice(0, 19) + 'Z'; }

  function parseInstant(s) {
    var d = new Date(s);
    return isNaN(d.getTime()) ? null : d;
  }

  function monthStart(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)); }
  function addMonths(d, n) {
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, d.getUTCDate(),
      d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()));
  }
  function monthLabel(d) { return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1); }
  function human(s) { return s.replace('T', ' ').replace(/Z$/, ' UTC'); }
  // "2025-01-01T00:00:00Z" → the value of a datetime-local input (read as UTC).
  function toLocalInput(s) { return s ? s.replace(/Z$/, '').slice(0, 19) : ''; }
  function fromLocalInput(v) {
    if (!v) return '';
    var s = v.length === 16 ? v + ':00' : v;
    return parseInstant(s + 'Z') ? s + 'Z' : '';
  }

  var nowInstant = iso(new Date());
  // The instant every panel is asked as of.
  function asOf() { return state.asOf || nowInstant; }
  // The earlier instant of the lifecycle comparisons (default: one month before asOf).
  function compareInstant() {
    if (state.compare) return state.compare;
    return iso(addMonths(parseInstant(asOf()), -1));
  }
  function cohortArg() {
    var c = {};
    if (state.cohortFrom) c.from = state.cohortFrom + '-01T00:00:00Z';
    if (state.cohortTo) c.to = state.cohortTo + '-01T00:00:00Z';
    return (c.from || c.to) ? c : null;
  }

  // ---------------------------------------------------------------- formatting

  var intFmt = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
  var numFmt = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
  function fmtInt(n) { return n === null || n === undefined ? '–' : intFmt.format(n); }
  function fmtPct(x) { return x === null || x === undefined ? '–' : (x * 100).toFixed(1) + ' %'; }
  function fmtUnit(v, unit) {
    if (v === null || v === undefined) return '–';
    if (unit === 'percent') return fmtPct(Number(v));
    if (unit === 'count') return fmtInt(Number(v));
    if (unit === 'currency') return String(v);
    if (typeof v === 'number') return numFmt.format(v);
    return String(v);
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k.indexOf('data-') === 0 || k === 'class' || k === 'type' || k === 'role' || k.indexOf('aria-') === 0 || k === 'title' || k === 'for' || k === 'value' || k === 'name') e.setAttribute(k, attrs[k]);
      else e[k] = attrs[k];
    });
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function $(id) { return document.getElementById(id); }

  // ---------------------------------------------------------------- GraphQL

  function describeErrors(errors) {
    return errors.map(function (e) {
      var code = e.extensions && e.extensions.code ? ' [' + e.extensions.code + ']' : '';
      var where = e.path ? ' (at ' + e.path.join('.') + ')' : '';
      return e.message + code + where;
    }).join('\n');
  }

  // Sends one GraphQL request; resolves to the whole response ({data, extensions}) or
  // rejects with an Error whose message says what went wrong in words.
  // The API key of a server that requires one (HTTP 401): asked once, kept for the tab.
  var KEY_ITEM = 'tally-api-key';
  function apiKey() {
    try { return sessionStorage.getItem(KEY_ITEM); } catch (e) { return null; }
  }

  function gql(query, variables, retried) {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, TIMEOUT_MS);
    var headers = { 'content-type': 'application/json', accept: 'application/json' };
    var key = apiKey();
    if (key) headers.authorization = 'Bearer ' + key;
    return fetch(ENDPOINT, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables || {} }),
      signal: ctl.signal,
    }).then(function (res) {
      if (res.status === 401 && !retried) {
        var given = window.prompt('This tally server needs an API key (ask its operator):');
        if (given) {
          try { sessionStorage.setItem(KEY_ITEM, given.trim()); } catch (e) { /* private mode */ }
          clearTimeout(timer);
          return gql(query, variables, true);
        }
      }
      return res.text().then(function (text) {
        var json = null;
        try { json = JSON.parse(text); } catch (e) { json = null; }
        if (!json) throw new Error('tally answered HTTP ' + res.status + ' without a GraphQL response: ' + text.slice(0, 200));
        if (json.errors && json.errors.length) throw new Error(describeErrors(json.errors));
        if (!res.ok) throw new Error('tally answered HTTP ' + res.status);
        return json;
      });
    }, function (e) {
      if (e && e.name === 'AbortError') throw new Error('The request timed out: tally did not answer within ' + (TIMEOUT_MS / 1000) + ' s. Try a narrower question (fewer dimensions, a filter, a row limit).');
      throw new Error('tally could not be reached (' + (e && e.message ? e.message : e) + '). Is the server running?');
    }).finally(function () { clearTimeout(timer); });
  }

  // ---------------------------------------------------------------- panels

  var generation = {};
  // Runs `work` (returns a promise) for the panel `id`, showing loading and error states;
  // a newer run of the same panel makes the older one's answer be ignored.
  function runPanel(id, what, work) {
    var p = $(id);
    var g = (generation[id] || 0) + 1;
    generation[id] = g;
    p.dataset.state = 'loading';
    p.querySelector('.status').textContent = 'Loading ' + what + '…';
    return work(function () { return generation[id] === g; }).then(function () {
      if (generation[id] !== g) return;
      p.dataset.state = 'ready';
      p.querySelector('.status').textContent = '';
    }, function (e) {
      if (generation[id] !== g) return;
      p.dataset.state = 'error';
      p.querySelector('.status').textContent = 'Could not load ' + what + ': ' + (e && e.message ? e.message : e);
      if (window.console) console.warn('tally dashboard:', id, e);
    });
  }

  var charts = {};
  function chart(id) {
    var node = $(id);
    var c = charts[id];
    if (!c || c.isDisposed()) {
      c = echarts.init(node, null, { renderer: 'canvas' });
      charts[id] = c;
    }
    return c;
  }
  function resizeCharts() {
    Object.keys(charts).forEach(function (k) {
      var c = charts[k];
      if (!c.isDisposed() && c.getDom().offsetParent !== null) c.resize();
    });
  }
  window.addEventListener('resize', resizeCharts);

  function table(columns, rows, opts) {
    opts = opts || {};
    var head = el('tr', null, columns.map(function (c) { return el('th', { scope: 'col', text: c.title || c.key }); }));
    var body = rows.map(function (r, i) {
      var tr = el('tr', { 'data-row': String(i) }, columns.map(function (c) {
        var raw = r[c.key];
        var td = el('td', { class: c.num ? 'num' : '', 'data-key': c.key, text: c.format ? c.format(raw, r) : (raw === null || raw === undefined ? '–' : String(raw)) });
        td.dataset.value = raw === null || raw === undefined ? '' : (typeof raw === 'object' ? JSON.stringify(raw) : String(raw));
        return td;
      }));
      if (opts.incomplete && opts.incomplete(r)) tr.className = 'incomplete';
      return tr;
    });
    return el('table', null, [el('thead', null, [head]), el('tbody', null, body)]);
  }

  function baseOption() {
    return {
      color: PALETTE,
      textStyle: { fontFamily: 'system-ui, sans-serif' },
      animation: false,
      tooltip: { trigger: 'axis', confine: true },
      grid: { left: 56, right: 24, top: 40, bottom: 40, containLabel: true },
      legend: { top: 0, type: 'scroll' },
    };
  }

  // A line chart over time; the points of incomplete periods are drawn dashed.
  function timeSeriesOption(xs, series, complete, valueFmt) {
    var opt = baseOption();
    opt.xAxis = { type: 'category', data: xs, boundaryGap: false };
    opt.yAxis = { type: 'value', axisLabel: { formatter: valueFmt || undefined } };
    if (valueFmt) opt.tooltip.valueFormatter = valueFmt;
    opt.series = [];
    // The dashed "(incomplete)" twins share their series' colour and stay out of the legend.
    opt.legend.data = series.map(function (s) { return s.name; });
    series.forEach(function (s, i) {
      var colour = PALETTE[i % PALETTE.length];
      var solid = s.data.map(function (v, j) { return complete[j] ? v : null; });
      var firstIncomplete = complete.indexOf(false);
      opt.series.push({ name: s.name, type: 'line', data: solid, color: colour, symbolSize: 6, connectNulls: false });
      if (firstIncomplete >= 0) {
        var dashed = s.data.map(function (v, j) { return (j >= firstIncomplete - 1 && (j >= firstIncomplete || complete[j])) ? v : null; });
        opt.series.push({ name: s.name + ' (incomplete)', type: 'line', data: dashed, color: colour,
          lineStyle: { type: 'dashed' }, symbol: 'emptyCircle', symbolSize: 7, connectNulls: false });
      }
    });
    return opt;
  }

  // ---------------------------------------------------------------- asOf control

  var sliderMonths = [];
  function setupSlider(firstMonth) {
    var start = monthStart(firstMonth);
    var end = addMonths(monthStart(parseInstant(nowInstant)), 1);
    sliderMonths = [];
    for (var d = start; d <= end && sliderMonths.length < 600; d = addMonths(d, 1)) sliderMonths.push(iso(d));
    var s = $('asof-slider');
    s.max = String(sliderMonths.length); // the last position is "now"
    syncAsOfControls();
    document.body.dataset.slider = 'ready';
  }
  function syncAsOfControls() {
    var s = $('asof-slider');
    var idx = sliderMonths.length;
    if (state.asOf) {
      var t = parseInstant(state.asOf).getTime();
      idx = 0;
      for (var i = 0; i < sliderMonths.length; i++) if (parseInstant(sliderMonths[i]).getTime() <= t) idx = i;
    }
    s.value = String(idx);
    s.setAttribute('aria-valuetext', state.asOf ? human(state.asOf) : 'now');
    $('asof-input').value = toLocalInput(asOf());
    $('asof-text').textContent = state.asOf ? human(state.asOf) : 'now (' + human(nowInstant) + ')';
    document.body.dataset.asof = asOf();
  }
  function setAsOf(value) {
    state.asOf = value;
    if (!value) nowInstant = iso(new Date());
    writeState();
    syncAsOfControls();
    loadPage();
  }
  $('asof-slider').addEventListener('input', function () {
    var i = Number(this.value);
    $('asof-text').textContent = i >= sliderMonths.length ? 'now' : human(sliderMonths[i]);
  });
  $('asof-slider').addEventListener('change', function () {
    var i = Number(this.value);
    setAsOf(i >= sliderMonths.length ? '' : sliderMonths[i]);
  });
  $('asof-input').addEventListener('change', function () {
    var v = fromLocalInput(this.value);
    if (v) setAsOf(v);
  });
  $('asof-now').addEventListener('click', function () { setAsOf(''); });

  // ---------------------------------------------------------------- pages

  function showPage(page) {
    state.page = page;
    writeState();
    ['lifecycle', 'gym', 'explore'].forEach(function (p) {
      $('page-' + p).hidden = p !== page;
      var tab = $('tab-' + p);
      tab.setAttribute('aria-selected', p === page ? 'true' : 'false');
      tab.tabIndex = p === page ? 0 : -1;
    });
    document.body.dataset.page = page;
    loadPage();
  }
  document.querySelectorAll('.tabs button').forEach(function (b, i, all) {
    b.addEventListener('click', function () { showPage(b.dataset.page); });
    b.addEventListener('keydown', function (e) {
      var d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      var next = all[(i + d + all.length) % all.length];
      next.focus();
      showPage(next.dataset.page);
    });
  });

  function loadPage() {
    if (state.page === 'lifecycle') loadLifecycle();
    else if (state.page === 'gym') loadGym();
    else loadExplore();
    setTimeout(resizeCharts, 0);
  }

  // ---------------------------------------------------------------- SaaS lifecycle

  function syncLifecycleControls() {
    $('compare-input').value = toLocalInput(compareInstant());
    $('cohort-from').value = state.cohortFrom;
    $('cohort-to').value = state.cohortTo;
  }
  $('compare-input').addEventListener('change', function () {
    state.compare = fromLocalInput(this.value);
    writeState();
    loadLifecycle();
  });
  $('cohort-from').addEventListener('change', function () { state.cohortFrom = this.value; writeState(); loadLifecycle(); });
  $('cohort-to').addEventListener('change', function () { state.cohortTo = this.value; writeState(); loadLifecycle(); });

  function loadLifecycle() {
    syncLifecycleControls();
    var t = asOf();
    var t0 = compareInstant();
    var cohort = cohortArg();
    loadTiles(t, t0);
    loadConversion(t, cohort);
    loadChurn(t);
    loadJourney(t, cohort);
    loadTransitions(t0, t, cohort);
  }

  function countsOf(list) {
    var m = {};
    list.forEach(function (s) { m[s.stage] = s.count; });
    return m;
  }

  function loadTiles(t, t0) {
    runPanel('panel-tiles', 'the stage counts', function (current) {
      return gql('query Tiles($t: String, $t0: String) { saas { now: stageCounts(asOf: $t) { stage count } before: stageCounts(asOf: $t0) { stage count } } }',
        { t: t, t0: t0 }).then(function (r) {
        if (!current()) return;
        var now = countsOf(r.data.saas.now);
        var before = countsOf(r.data.saas.before);
        var box = $('tiles');
        box.textContent = '';
        STAGES.forEach(function (s) {
          var d = now[s] - before[s];
          var tile = el('div', { class: 'tile', 'data-stage': s, 'data-count': String(now[s]), 'data-before': String(before[s]) }, [
            el('div', { class: 'name', text: STAGE_NAME[s] }),
            el('div', { class: 'value', text: fmtInt(now[s]) }),
            el('div', { class: 'delta', text: (d >= 0 ? '+' : '−') + fmtInt(Math.abs(d)) + ' since ' + human(t0) + ' (' + fmtInt(before[s]) + ')' }),
          ]);
          tile.style.setProperty('--c', STAGE_COLOUR[s]);
          box.appendChild(tile);
        });
      });
    });
  }

  function cohortWhere(cohort) {
    if (!cohort) return null;
    var f = {};
    if (cohort.from) f.gte = cohort.from;
    if (cohort.to) f.lt = cohort.to;
    return { signupCohort: f };
  }

  function loadConversion(t, cohort) {
    runPanel('panel-conversion', 'the cohort conversion', function (current) {
      var q = 'query Conversion($t: String, $w: SaasWhere) { saas {' +
        ' total: metrics(asOf: $t, where: $w) { lifecycleUsers reachedProspect reachedCustomer leadToProspectRate prospectToCustomerRate leadToCustomerRate }' +
        ' months: metrics(asOf: $t, where: $w) { signupCohort(granularity: MONTH) lifecycleUsers leadToProspectRate prospectToCustomerRate leadToCustomerRate isComplete } } }';
      return gql(q, { t: t, w: cohortWhere(cohort) }).then(function (r) {
        if (!current()) return;
        var tot = r.data.saas.total[0] || {};
        var box = $('conversion-kpis');
        box.textContent = '';
        var who = cohort ? 'signed up ' + (cohort.from ? 'from ' + cohort.from.slice(0, 7) : '') + (cohort.to ? ' before ' + cohort.to.slice(0, 7) : '') : 'all signups';
        [['Cohort (' + who + ')', fmtInt(tot.lifecycleUsers), 'lifecycleUsers', tot.lifecycleUsers],
          ['Lead → prospect', fmtPct(tot.leadToProspectRate), 'leadToProspectRate', tot.leadToProspectRate],
          ['Prospect → customer', fmtPct(tot.prospectToCustomerRate), 'prospectToCustomerRate', tot.prospectToCustomerRate],
          ['Lead → customer', fmtPct(tot.leadToCustomerRate), 'leadToCustomerRate', tot.leadToCustomerRate]].forEach(function (k) {
          box.appendChild(el('div', { class: 'kpi', 'data-metric': k[2], 'data-value': k[3] === null || k[3] === undefined ? '' : String(k[3]) },
            [el('span', { class: 'value', text: k[1] }), el('span', { class: 'name', text: k[0] })]));
        });
        var rows = r.data.saas.months;
        var xs = rows.map(function (x) { return x.signupCohort.slice(0, 7); });
        var complete = rows.map(function (x) { return x.isComplete; });
        var opt = timeSeriesOption(xs, [
          { name: 'Lead → prospect', data: rows.map(function (x) { return x.leadToProspectRate; }) },
          { name: 'Prospect → customer', data: rows.map(function (x) { return x.prospectToCustomerRate; }) },
          { name: 'Lead → customer', data: rows.map(function (x) { return x.leadToCustomerRate; }) },
        ], complete, function (v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(0) + ' %'; });
        chart('conversion-chart').setOption(opt, true);
        if (!rows.length) $('panel-conversion').querySelector('.note') || box.appendChild(el('p', { class: 'note', text: 'No user of this cohort existed at ' + human(t) + '.' }));
      });
    });
  }

  // Churn of month M is customerChurnRate as of the first instant of M+1; the month that
  // holds asOf is shown up to asOf, dashed (incomplete).
  function loadChurn(t) {
    runPanel('panel-churn', 'the churn trend', function (current) {
      var at = parseInstant(t);
      var ends = [];
      var m = monthStart(at);
      for (var i = CHURN_MONTHS - 1; i >= 0; i--) ends.push(addMonths(m, -i));
      var partial = at.getTime() !== m.getTime();
      var points = ends.map(function (e) { return { asOf: iso(e), label: monthLabel(addMonths(e, -1)), complete: true }; });
      if (partial) points.push({ asOf: t, label: monthLabel(m) + ' (to date)', complete: false });
      var fields = points.map(function (p, i) {
        return 'm' + i + ': metrics(asOf: "' + p.asOf + '") { customersMonthAgo churnedCustomers customerChurnRate }';
      }).join(' ');
      return gql('query Churn { saas { ' + fields + ' } }').then(function (r) {
        if (!current()) return;
        var vals = points.map(function (p, i) { var row = r.data.saas['m' + i][0] || {}; return row.customerChurnRate === undefined ? null : row.customerChurnRate; });
        var opt = timeSeriesOption(points.map(function (p) { return p.label; }),
          [{ name: 'Customer churn rate', data: vals }],
          points.map(function (p) { return p.complete; }),
          function (v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + ' %'; });
        chart('churn-chart').setOption(opt, true);
        $('churn-chart').dataset.values = JSON.stringify(vals);
      });
    });
  }

  var JOURNEY_STAGE = {
    SIGNED_UP: null, CREATED_SHOP: null, PAID_INVOICE: null,
    NO_SHOP_YET: 'LEAD', AWAITING_PAYMENT: 'PROSPECT', REPEAT: 'CUSTOMER', PAID_ONCE: 'CUSTOMER',
    DELETED_ACCOUNT: 'CHURNED', DELETED_SHOP: 'CHURNED', DID_NOT_PAY: 'CHURNED',
    PAID_THEN_DELETED_SHOP: 'CHURNED', PAID_THEN_DID_NOT_PAY: 'CHURNED',
  };
  var NODE_COLOUR = {
    SIGNED_UP: '#0072B2', CREATED_SHOP: '#E69F00', PAID_INVOICE: '#009E73', NO_SHOP_YET: '#56B4E9',
    AWAITING_PAYMENT: '#E69F00', REPEAT: '#009E73', PAID_ONCE: '#009E73', DELETED_ACCOUNT: '#D55E00',
    DELETED_SHOP: '#D55E00', DID_NOT_PAY: '#CC79A7', PAID_THEN_DELETED_SHOP: '#D55E00', PAID_THEN_DID_NOT_PAY: '#CC79A7',
  };

  function nodeColour(id) {
    if (NODE_COLOUR[id]) return NODE_COLOUR[id];
    var stage = id.split(':')[1];
    return STAGE_COLOUR[stage] || '#8a939e';
  }

  function sankeyOption(flow) {
    var labels = {};
    flow.nodes.forEach(function (n) { labels[n.id] = n.label; });
    return {
      color: PALETTE,
      animation: false,
      tooltip: {
        trigger: 'item', confine: true,
        formatter: function (p) {
          if (p.dataType === 'edge') return labels[p.data.source] + ' → ' + labels[p.data.target] + ': ' + fmtInt(p.data.value) + ' users';
          return labels[p.name] + ': ' + fmtInt(p.value) + ' users';
        },
      },
      series: [{
        type: 'sankey', left: 8, right: 150, top: 10, bottom: 10, nodeGap: 12, draggable: false,
        layoutIterations: 0, emphasis: { focus: 'adjacency' },
        label: { formatter: function (p) { return labels[p.name] + ' ' + fmtInt(p.value); } },
        lineStyle: { color: 'gradient', opacity: 0.35 },
        data: flow.nodes.map(function (n) { return { name: n.id, value: n.count, depth: n.level, itemStyle: { color: nodeColour(n.id) } }; }),
        // Links of no user are left out of the drawing (they would show as hairlines); the
        // node buttons under the chart list every node, zeros included.
        links: flow.links.filter(function (l) { return l.count > 0; }).map(function (l) { return { source: l.source, target: l.target, value: l.count }; }),
      }],
    };
  }

  function nodeButtons(boxId, flow, onPick) {
    var box = $(boxId);
    box.textContent = '';
    flow.nodes.forEach(function (n) {
      var b = el('button', { type: 'button', 'data-node': n.id, 'data-count': String(n.count), text: n.label + ': ' + fmtInt(n.count) });
      b.addEventListener('click', function () { onPick(n); });
      box.appendChild(b);
    });
  }

  function loadJourney(t, cohort) {
    runPanel('panel-journey', 'the journey', function (current) {
      return gql('query Journey($t: String, $c: SaasCohort) { saas { journey(asOf: $t, cohort: $c) { nodes { id label count level } links { source target count } } } }',
        { t: t, c: cohort }).then(function (r) {
        if (!current()) return;
        var flow = r.data.saas.journey;
        var c = chart('journey-chart');
        c.setOption(sankeyOption(flow), true);
        c.off('click');
        c.on('click', function (p) {
          if (p.dataType === 'node') drillJourney(flow.nodes.filter(function (n) { return n.id === p.name; })[0]);
        });
        nodeButtons('journey-nodes', flow, drillJourney);
      });
    });
  }

  function loadTransitions(t0, t, cohort) {
    runPanel('panel-transitions', 'the transitions', function (current) {
      return gql('query Transitions($t0: String!, $t: String!, $c: SaasCohort) { saas { transitions(from: $t0, to: $t, cohort: $c) { nodes { id label count level } links { source target count } } } }',
        { t0: t0, t: t, c: cohort }).then(function (r) {
        if (!current()) return;
        var flow = r.data.saas.transitions;
        $('h-transitions').textContent = 'Stage transitions from ' + human(t0) + ' to ' + human(t);
        var c = chart('transitions-chart');
        c.setOption(sankeyOption(flow), true);
        c.off('click');
        c.on('click', function (p) {
          if (p.dataType === 'node') drillTransition(flow.nodes.filter(function (n) { return n.id === p.name; })[0], t0, t);
        });
        nodeButtons('transitions-nodes', flow, function (n) { drillTransition(n, t0, t); });
      });
    });
  }

  // ---- the users behind a node

  var drill = null;

  function drillJourney(node) {
    if (!node) return;
    var stage = JOURNEY_STAGE[node.id];
    var note = '“' + node.label + '” holds ' + fmtInt(node.count) + ' users. ' + (stage
      ? 'Listed: the cohort’s ' + STAGE_NAME[stage].toLowerCase() + ' (stage ' + stage + ') as of ' + human(asOf()) + ', the stage this node belongs to; payments and churn reason tell the branches apart.'
      : 'Listed: every user of the cohort as of ' + human(asOf()) + '.');
    openUsers({ asOf: asOf(), stage: stage, cohort: cohortArg(), note: note, node: node.id });
  }

  function drillTransition(node, t0, t) {
    if (!node) return;
    var parts = node.id.split(':');
    if (parts[1] === 'NOT_SIGNED_UP') {
      openUsers({ asOf: t, stage: null, cohort: cohortArg(), node: node.id, note: '“' + node.label + '” (' + fmtInt(node.count) + ' users) had not signed up at ' + human(t0) + '. Listed: every user of the cohort as of ' + human(t) + '; their signup time tells them apart.' });
      return;
    }
    var at = parts[0] === 'from' ? t0 : t;
    openUsers({ asOf: at, stage: parts[1], cohort: cohortArg(), node: node.id,
      note: 'Users ' + STAGE_NAME[parts[1]].toLowerCase() + ' (stage ' + parts[1] + ') as of ' + human(at) + ': ' + fmtInt(node.count) + ' in this node.' });
  }

  function openUsers(d) {
    drill = d;
    drill.offset = 0;
    $('panel-users').hidden = false;
    $('panel-users').dataset.node = d.node;
    $('users-note').textContent = d.note;
    loadUsers();
    $('panel-users').scrollIntoView({ block: 'nearest' });
  }

  function loadUsers() {
    var d = drill;
    runPanel('panel-users', 'the users', function (current) {
      var q = 'query Users($t: String, $s: SaasStage, $c: SaasCohort, $limit: Int, $offset: Int) { saas { users(asOf: $t, stage: $s, cohort: $c, limit: $limit, offset: $offset) {' +
        ' totalCount pageInfo { hasNextPage } edges { node { userId email signupTime stage churnReason paymentCount planId' +
        ' shops { shopId createdAt deleted plan { planId invoiceAmount } invoices { invoiceId invoiceAmount invoiceTimestamp delinquent payments { paymentId ds } } } } } } } }';
      return gql(q, { t: d.asOf, s: d.stage, c: d.cohort, limit: USERS_PAGE, offset: d.offset }).then(function (r) {
        if (!current()) return;
        var u = r.data.saas.users;
        var rows = u.edges.map(function (e) { return e.node; });
        $('h-users').textContent = 'Users' + (d.stage ? ' · ' + d.stage : '') + ' · as of ' + human(d.asOf) + ' · ' + fmtInt(u.totalCount) + ' in all';
        $('panel-users').dataset.total = String(u.totalCount);
        var cols = [
          { key: 'userId', title: 'User' }, { key: 'email', title: 'Email' },
          { key: 'signupTime', title: 'Signed up' }, { key: 'stage', title: 'Stage' },
          { key: 'churnReason', title: 'Churn reason' }, { key: 'paymentCount', title: 'Payments', num: true },
          { key: 'planId', title: 'Plan' },
          { key: 'shops', title: 'Shops', format: function (shops) {
            return shops.length ? shops.map(function (s) {
              return s.shopId + ' (' + (s.plan ? s.plan.planId + (s.plan.invoiceAmount ? ' ' + s.plan.invoiceAmount : '') : 'no plan') + (s.deleted ? ', deleted' : '') + ')';
            }).join('; ') : 'none';
          } },
          { key: 'invoices', title: 'Invoices (paid / delinquent)', format: function (_, row) {
            var inv = [];
            row.shops.forEach(function (s) { inv = inv.concat(s.invoices); });
            if (!inv.length) return 'none';
            return inv.map(function (i) {
              return i.invoiceId + ' ' + (i.invoiceAmount || '') + ' ' + i.invoiceTimestamp.slice(0, 10) + (i.payments.length ? ' paid ' + i.payments.map(function (p) { return p.ds; }).join(',') : '') + (i.delinquent ? ' DELINQUENT' : '');
            }).join('; ');
          } },
        ];
        rows.forEach(function (x) { x.invoices = null; });
        var box = $('users-table');
        box.textContent = '';
        box.appendChild(rows.length ? table(cols, rows) : el('p', { class: 'note', text: 'No user here.' }));
        $('users-page').textContent = rows.length ? (d.offset + 1) + '–' + (d.offset + rows.length) + ' of ' + fmtInt(u.totalCount) : '';
        $('users-prev').disabled = d.offset === 0;
        $('users-next').disabled = !u.pageInfo.hasNextPage;
      });
    });
  }
  $('users-prev').addEventListener('click', function () { if (drill) { drill.offset = Math.max(0, drill.offset - USERS_PAGE); loadUsers(); } });
  $('users-next').addEventListener('click', function () { if (drill) { drill.offset += USERS_PAGE; loadUsers(); } });

  // ---------------------------------------------------------------- gym

  document.querySelectorAll('input[name="conversion-filter"]').forEach(function (r) {
    r.addEventListener('change', function () {
      if (r.checked) { state.conversionFilter = r.value; writeState(); loadGym(); }
    });
  });
  $('gym-tz').addEventListener('change', function () { state.tz = this.value.trim(); writeState(); loadGym(); });

  function loadGym() {
    document.querySelectorAll('input[name="conversion-filter"]').forEach(function (r) { r.checked = r.value === state.conversionFilter; });
    $('gym-tz').value = state.tz;
    var vars = { t: asOf(), f: state.conversionFilter, tz: state.tz || null };
    var q = 'query Gym($t: String, $f: GymConversionFilter, $tz: String) { gym {' +
      ' all: metrics(asOf: $t, conversionFilter: $f, timezone: $tz) { leads clients conversionRate medianDaysToConvert avgDaysToConvert }' +
      ' branches: metrics(asOf: $t, conversionFilter: $f, timezone: $tz, orderBy: [{ conversionRate: DESC }, { branchName: ASC }]) { branchId branchName branchCity branchCountry leads clients conversionRate medianDaysToConvert }' +
      ' months: metrics(asOf: $t, conversionFilter: $f, timezone: $tz) { signupTime(granularity: MONTH) leads clients isComplete } } }';
    var answer = gql(q, vars);
    runPanel('panel-gym-kpis', 'the gym totals', function (current) {
      return answer.then(function (r) {
        if (!current()) return;
        var a = r.data.gym.all[0] || {};
        var box = $('gym-kpis');
        box.textContent = '';
        [['Leads', fmtInt(a.leads), 'leads', a.leads], ['Clients', fmtInt(a.clients), 'clients', a.clients],
          ['Conversion rate', fmtPct(a.conversionRate), 'conversionRate', a.conversionRate],
          ['Median days to convert', a.medianDaysToConvert === null || a.medianDaysToConvert === undefined ? '–' : numFmt.format(a.medianDaysToConvert), 'medianDaysToConvert', a.medianDaysToConvert],
          ['Average days to convert', a.avgDaysToConvert === null || a.avgDaysToConvert === undefined ? '–' : numFmt.format(a.avgDaysToConvert), 'avgDaysToConvert', a.avgDaysToConvert]].forEach(function (k) {
          box.appendChild(el('div', { class: 'kpi', 'data-metric': k[2], 'data-value': k[3] === null || k[3] === undefined ? '' : String(k[3]) },
            [el('span', { class: 'value', text: k[1] }), el('span', { class: 'name', text: k[0] })]));
        });
      });
    });
    runPanel('panel-gym-branches', 'the branches', function (current) {
      return answer.then(function (r) {
        if (!current()) return;
        var rows = r.data.gym.branches;
        var opt = baseOption();
        opt.tooltip = { trigger: 'axis', confine: true, valueFormatter: fmtPct };
        opt.legend = { show: false };
        var names = rows.map(function (x) { return x.branchName; });
        opt.yAxis = { type: 'category', data: names.slice().reverse(), axisLabel: { width: 140, overflow: 'truncate' } };
        opt.xAxis = { type: 'value', max: 1, axisLabel: { formatter: function (v) { return (v * 100).toFixed(0) + ' %'; } } };
        opt.series = [{ name: 'Conversion rate (' + state.conversionFilter + ')', type: 'bar', color: PALETTE[0],
          data: rows.map(function (x) { return x.conversionRate; }).reverse(),
          label: { show: true, position: 'right', formatter: function (p) { return fmtPct(p.value); } } }];
        $('gym-branch-chart').style.height = Math.max(240, rows.length * 28 + 60) + 'px';
        var c = chart('gym-branch-chart');
        c.resize();
        c.setOption(opt, true);
        var box = $('gym-branch-table');
        box.textContent = '';
        box.appendChild(table([
          { key: 'branchName', title: 'Branch' }, { key: 'branchCity', title: 'City' }, { key: 'branchCountry', title: 'Country' },
          { key: 'leads', title: 'Leads', num: true, format: fmtInt }, { key: 'clients', title: 'Clients', num: true, format: fmtInt },
          { key: 'conversionRate', title: 'Conversion', num: true, format: fmtPct },
          { key: 'medianDaysToConvert', title: 'Median days', num: true, format: function (v) { return v === null ? '–' : numFmt.format(v); } },
        ], rows));
      });
    });
    runPanel('panel-gym-months', 'the months', function (current) {
      return answer.then(function (r) {
        if (!current()) return;
        var rows = r.data.gym.months;
        var opt = timeSeriesOption(rows.map(function (x) { return x.signupTime.slice(0, 7); }), [
          { name: 'Leads', data: rows.map(function (x) { return x.leads; }) },
          { name: 'Clients', data: rows.map(function (x) { return x.clients; }) },
        ], rows.map(function (x) { return x.isComplete; }));
        chart('gym-month-chart').setOption(opt, true);
      });
    });
  }

  // ---------------------------------------------------------------- explore

  var catalog = null;
  var lastResult = null;

  function pascal(s) {
    return s.split(/[_\s-]+/).map(function (w) { return w.charAt(0).toUpperCase() + w.slice(1); }).join('');
  }
  function modelOf(name) {
    return catalog ? catalog.filter(function (m) { return m.name === name; })[0] : null;
  }
  function dimOf(model, name) { return model.dimensions.filter(function (d) { return d.name === name; })[0]; }
  function metricOf(model, name) { return model.metrics.filter(function (m) { return m.name === name; })[0]; }

  var OPS = {
    string: ['equals', 'notEquals', 'in', 'notIn', 'contains', 'startsWith', 'isNull'],
    number: ['equals', 'notEquals', 'gt', 'gte', 'lt', 'lte', 'in', 'isNull'],
    time: ['gte', 'lt', 'gt', 'lte', 'equals', 'isNull'],
    boolean: ['equals', 'isNull'],
  };

  function loadCatalog() {
    if (catalog) return Promise.resolve(catalog);
    return gql('query Catalog { catalog { models { name description conversionVariants metrics { name description unit kind dimensions } dimensions { name description type table granularities } } } }')
      .then(function (r) { catalog = r.data.catalog.models; return catalog; });
  }

  function loadExplore() {
    runPanel('panel-explore-form', 'the catalog', function (current) {
      return loadCatalog().then(function () {
        if (!current()) return;
        renderExploreForm();
        if (state.metrics.length) runExplore();
      });
    });
  }

  function renderExploreForm() {
    var sel = $('ex-model');
    if (!sel.options.length) {
      catalog.forEach(function (m) { sel.appendChild(el('option', { value: m.name, text: m.name })); });
    }
    if (!modelOf(state.model)) state.model = catalog[0].name;
    sel.value = state.model;
    var model = modelOf(state.model);
    $('ex-model-desc').textContent = model.description;
    $('ex-grain').value = state.grain;
    $('ex-tz').value = state.tz;
    $('ex-limit').value = state.limit;
    var vw = $('ex-variant-wrap');
    var vs = $('ex-variant');
    vs.textContent = '';
    vw.hidden = !model.conversionVariants.length;
    if (model.conversionVariants.length) {
      vs.appendChild(el('option', { value: '', text: '(default)' }));
      model.conversionVariants.forEach(function (v) { vs.appendChild(el('option', { value: v, text: v })); });
      vs.value = state.variant;
    }
    var mbox = $('ex-metrics');
    mbox.textContent = '';
    model.metrics.forEach(function (m) {
      var id = 'm-' + m.name;
      var cb = el('input', { type: 'checkbox', id: id, value: m.name, 'data-metric': m.name });
      cb.checked = state.metrics.indexOf(m.name) >= 0;
      cb.addEventListener('change', function () {
        state.metrics = Array.prototype.filter.call(mbox.querySelectorAll('input:checked'), function () { return true; }).map(function (x) { return x.value; });
        updateDimAvailability();
        exploreChanged();
      });
      mbox.appendChild(el('label', { for: id, title: m.description }, [cb, ' ' + m.name + ' ', el('code', { text: m.unit }),
        el('small', { text: m.description + ' (' + m.kind + ')' })]));
    });
    var dbox = $('ex-dims');
    dbox.textContent = '';
    model.dimensions.forEach(function (d) {
      var id = 'd-' + d.name;
      var cb = el('input', { type: 'checkbox', id: id, value: d.name, 'data-dim': d.name });
      cb.checked = state.dims.indexOf(d.name) >= 0;
      cb.addEventListener('change', function () {
        state.dims = Array.prototype.map.call(dbox.querySelectorAll('input:checked'), function (x) { return x.value; });
        exploreChanged();
      });
      dbox.appendChild(el('label', { for: id, title: d.description }, [cb, ' ' + d.name + ' ', el('code', { text: d.type }),
        el('small', { text: d.description })]));
    });
    updateDimAvailability();
    renderFilters();
  }

  // Dimensions that some selected metric cannot be grouped by are disabled (and say why).
  function updateDimAvailability() {
    var model = modelOf(state.model);
    var chosen = state.metrics.map(function (n) { return metricOf(model, n); }).filter(Boolean);
    $('ex-dims').querySelectorAll('input').forEach(function (cb) {
      var ok = chosen.every(function (m) { return m.dimensions.indexOf(cb.value) >= 0; });
      cb.disabled = !ok && !cb.checked;
      cb.parentNode.title = ok ? dimOf(model, cb.value).description : 'Not available with the chosen metrics';
    });
  }

  function renderFilters() {
    var model = modelOf(state.model);
    var box = $('ex-filters');
    box.textContent = '';
    state.filters.forEach(function (f, i) {
      var dim = dimOf(model, f.dim);
      var dsel = el('select', { 'aria-label': 'Filter ' + (i + 1) + ' dimension' });
      model.dimensions.forEach(function (d) { dsel.appendChild(el('option', { value: d.name, text: d.name })); });
      dsel.value = f.dim;
      var osel = el('select', { 'aria-label': 'Filter ' + (i + 1) + ' condition' });
      (OPS[dim ? dim.type : 'string'] || OPS.string).forEach(function (o) { osel.appendChild(el('option', { value: o, text: o })); });
      osel.value = f.op;
      var val = el('input', { type: 'text', 'aria-label': 'Filter ' + (i + 1) + ' value', value: f.value === undefined ? '' : String(f.value) });
      val.placeholder = dim && dim.type === 'time' ? '2024-01-01T00:00:00Z' : (f.op === 'in' || f.op === 'notIn' ? 'a, b, c' : (f.op === 'isNull' ? 'true or false' : 'value'));
      var rm = el('button', { type: 'button', text: 'Remove', 'aria-label': 'Remove filter ' + (i + 1) });
      dsel.addEventListener('change', function () { f.dim = dsel.value; var d2 = dimOf(model, f.dim); f.op = OPS[d2.type][0]; renderFilters(); exploreChanged(); });
      osel.addEventListener('change', function () { f.op = osel.value; exploreChanged(); });
      val.addEventListener('change', function () { f.value = val.value; exploreChanged(); });
      rm.addEventListener('click', function () { state.filters.splice(i, 1); renderFilters(); exploreChanged(); });
      box.appendChild(el('div', { class: 'filter-row', 'data-filter': String(i) }, [dsel, osel, val, rm]));
    });
  }
  $('ex-add-filter').addEventListener('click', function () {
    var model = modelOf(state.model);
    if (!model) return;
    var d = model.dimensions[0];
    state.filters.push({ dim: d.name, op: OPS[d.type][0], value: '' });
    renderFilters();
  });

  $('ex-model').addEventListener('change', function () {
    state.model = this.value; state.metrics = []; state.dims = []; state.filters = []; state.variant = '';
    renderExploreForm();
    exploreChanged();
  });
  $('ex-grain').addEventListener('change', function () { state.grain = this.value; exploreChanged(); });
  $('ex-tz').addEventListener('change', function () { state.tz = this.value.trim(); exploreChanged(); });
  $('ex-variant').addEventListener('change', function () { state.variant = this.value; exploreChanged(); });
  $('ex-limit').addEventListener('change', function () { state.limit = this.value; exploreChanged(); });
  $('ex-run').addEventListener('click', function () { runExplore(); });
  $('ex-csv').addEventListener('click', function () { downloadCsv(); });
  $('ex-copy').addEventListener('click', function () {
    var url = location.href;
    var say = function (t) { $('panel-explore-form').querySelector('.status').textContent = t; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(url).then(function () { say('Link copied: ' + url); }, function () { say('Link to this view: ' + url); });
    } else {
      say('Link to this view: ' + url);
    }
  });

  function exploreChanged() {
    writeState();
    if (state.metrics.length) runExplore();
  }

  // The filter rows as a `<Model>Where` value; throws with the row's number on bad input.
  function buildWhere(model) {
    var conds = state.filters.map(function (f, i) {
      var dim = dimOf(model, f.dim);
      var n = 'Filter ' + (i + 1) + ' (' + f.dim + ' ' + f.op + ')';
      if (!dim) throw new Error(n + ': ' + f.dim + ' is no dimension of ' + model.name);
      var raw = f.value === undefined ? '' : String(f.value).trim();
      var v;
      if (f.op === 'isNull') {
        if (raw !== 'true' && raw !== 'false') throw new Error(n + ': write true or false');
        v = raw === 'true';
      } else if (dim.type === 'boolean') {
        if (raw !== 'true' && raw !== 'false') throw new Error(n + ': write true or false');
        v = raw === 'true';
      } else if (f.op === 'in' || f.op === 'notIn') {
        v = raw.split(',').map(function (x) { return x.trim(); }).filter(function (x) { return x !== ''; });
        if (!v.length) throw new Error(n + ': give at least one value, separated by commas');
        if (dim.type === 'number') v = v.map(function (x) { var k = Number(x); if (isNaN(k)) throw new Error(n + ': "' + x + '" is not a number'); return k; });
      } else if (dim.type === 'number') {
        v = Number(raw);
        if (raw === '' || isNaN(v)) throw new Error(n + ': "' + raw + '" is not a number');
      } else {
        if (raw === '') throw new Error(n + ': the value is empty');
        v = raw;
      }
      var c = {};
      c[f.dim] = {};
      c[f.dim][f.op] = v;
      return c;
    });
    if (!conds.length) return null;
    return conds.length === 1 ? conds[0] : { and: conds };
  }

  function exploreQuery(model) {
    var timeDims = state.dims.filter(function (d) { var x = dimOf(model, d); return x && x.type === 'time'; });
    var fields = state.dims.map(function (d) {
      return timeDims.indexOf(d) >= 0 ? d + '(granularity: ' + state.grain + ')' : d;
    }).concat(state.metrics);
    if (timeDims.length) fields.push('isComplete');
    var M = pascal(model.name);
    var variant = model.conversionVariants.length && state.variant;
    var q = 'query Explore($asOf: String, $where: ' + M + 'Where, $tz: String, $limit: Int' + (variant ? ', $variant: ' + M + 'ConversionFilter' : '') + ') { ' +
      model.name + ' { metrics(asOf: $asOf, where: $where, timezone: $tz, limit: $limit' + (variant ? ', conversionFilter: $variant' : '') + ') { ' + fields.join(' ') + ' } } }';
    return { query: q, timeDims: timeDims, variant: variant };
  }

  function runExplore() {
    return runPanel('panel-explore', 'the result', function (current) {
      var model = modelOf(state.model);
      if (!model) return Promise.reject(new Error('no model named ' + state.model));
      if (!state.metrics.length) return Promise.reject(new Error('choose at least one metric'));
      var where;
      try { where = buildWhere(model); } catch (e) { return Promise.reject(e); }
      var eq = exploreQuery(model);
      var limit = Number(state.limit) || 500;
      var vars = { asOf: asOf(), where: where, tz: state.tz || null, limit: limit };
      if (eq.variant) vars.variant = state.variant;
      return gql(eq.query, vars).then(function (r) {
        if (!current()) return;
        var rows = r.data[model.name].metrics;
        var cols = state.dims.slice().concat(state.metrics);
        if (eq.timeDims.length) cols.push('isComplete');
        lastResult = { model: model.name, columns: cols, rows: rows };
        renderExploreResult(model, eq, rows, cols, r.extensions);
      });
    });
  }

  function renderExploreResult(model, eq, rows, cols, extensions) {
    var units = {};
    model.metrics.forEach(function (m) { units[m.name] = m.unit; });
    var box = $('ex-table');
    box.textContent = '';
    var columns = cols.map(function (c) {
      return { key: c, title: units[c] ? c + ' (' + units[c] + ')' : c, num: !!units[c], format: units[c] ? function (v) { return fmtUnit(v, units[c]); } : null };
    });
    box.appendChild(rows.length ? table(columns, rows, { incomplete: function (r) { return r.isComplete === false; } })
      : el('p', { class: 'note', text: 'No rows: nothing matches as of ' + human(asOf()) + '.' }));
    $('panel-explore').dataset.rows = String(rows.length);
    // The chart: a line over the first time dimension, else bars.
    var c = chart('ex-chart');
    var num = function (v) { return v === null || v === undefined ? null : Number(v); };
    var valueFmt = state.metrics.every(function (m) { return units[m] === 'percent'; }) ? function (v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + ' %'; } : null;
    if (eq.timeDims.length) {
      var td = eq.timeDims[0];
      var others = state.dims.filter(function (d) { return d !== td; });
      var xs = [];
      var complete = {};
      rows.forEach(function (r) { if (xs.indexOf(r[td]) < 0) xs.push(r[td]); complete[r[td]] = complete[r[td]] === false ? false : r.isComplete; });
      xs.sort();
      var groups = {};
      rows.forEach(function (r) {
        var key = others.map(function (o) { return r[o] === null ? '(none)' : String(r[o]); }).join(' / ');
        (groups[key] = groups[key] || {})[r[td]] = r;
      });
      var series = [];
      Object.keys(groups).slice(0, 12).forEach(function (g) {
        state.metrics.forEach(function (m) {
          series.push({ name: (g ? g + ' · ' : '') + m, data: xs.map(function (x) { return groups[g][x] ? num(groups[g][x][m]) : null; }) });
        });
      });
      c.setOption(timeSeriesOption(xs.map(function (x) { return x ? x.replace('T00:00:00', '').replace(/Z$/, '') : '(none)'; }), series,
        xs.map(function (x) { return complete[x] !== false; }), valueFmt), true);
    } else {
      var opt = baseOption();
      var labels = rows.map(function (r) { return state.dims.length ? state.dims.map(function (d) { return r[d] === null ? '(none)' : String(r[d]); }).join(' / ') : 'all'; });
      opt.xAxis = { type: 'category', data: labels, axisLabel: { interval: 0, rotate: labels.length > 6 ? 30 : 0, width: 120, overflow: 'truncate' } };
      opt.yAxis = { type: 'value', axisLabel: { formatter: valueFmt || undefined } };
      opt.tooltip.valueFormatter = valueFmt || undefined;
      opt.series = state.metrics.map(function (m) { return { name: m, type: 'bar', data: rows.map(function (r) { return num(r[m]); }) }; });
      c.setOption(opt, true);
    }
    var explain = (extensions && extensions.explain) || [];
    $('ex-sql').textContent = explain.map(function (e) {
      return '-- ' + e.path + (e.dbMillis !== undefined ? ' (' + e.dbMillis + ' ms in the database)' : '') + '\n' + (e.sql || '(answered from the models)') +
        (e.params && e.params.length ? '\n-- parameters: ' + JSON.stringify(e.params) : '');
    }).join('\n\n');
  }

  function csvCell(v) {
    if (v === null || v === undefined) return '';
    var s = String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function downloadCsv() {
    var go = lastResult ? Promise.resolve() : runExplore();
    go.then(function () {
      if (!lastResult) return;
      var lines = [lastResult.columns.map(csvCell).join(',')].concat(lastResult.rows.map(function (r) {
        return lastResult.columns.map(function (c) { return csvCell(r[c]); }).join(',');
      }));
      var blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
      var url = URL.createObjectURL(blob);
      var a = el('a', { href: url });
      a.download = 'tally-' + lastResult.model + '-' + asOf().replace(/[:]/g, '') + '.csv';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    });
  }

  // ---------------------------------------------------------------- boot

  function boot() {
    syncAsOfControls();
    showPage(state.page);
    // The slider spans the months of the saas events, from the first to now.
    // The hint says which months hold data, so an asOf past the newest event is no surprise.
    gql('query Span { saas { first: metrics(orderBy: [{ eventTime: ASC }], limit: 1) { eventTime(granularity: MONTH) events }' +
      ' last: metrics(orderBy: [{ eventTime: DESC }], limit: 1) { eventTime(granularity: MONTH) events } } }')
      .then(function (r) {
        var first = r.data.saas.first[0];
        var last = r.data.saas.last[0];
        setupSlider(first && first.eventTime ? parseInstant(first.eventTime) : addMonths(parseInstant(nowInstant), -24));
        if (first && last && first.eventTime && last.eventTime) {
          $('asof-range').textContent = 'The saas events span ' + first.eventTime.slice(0, 7) + ' to ' + last.eventTime.slice(0, 7) + '.';
        }
      }, function () { setupSlider(addMonths(parseInstant(nowInstant), -24)); });
  }

  boot();
})();
