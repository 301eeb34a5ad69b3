// Horde's report page: draws the run header, the verdict, the sortable
// request table, the charts over time (uPlot, one shared cursor) and the
// latency-by-percentile plot from the data embedded in #horde-data (the
// shape is host/src/output/html/mod.rs's). Every guest-chosen string goes
// into the page as text (textContent), never as markup.
(function () {
  'use strict';

  const EMBEDDED = JSON.parse(document.getElementById('horde-data').textContent);
  // The live page (`horde run --web`) gets its data from the server's events.
  const LIVE = !!(EMBEDDED && EMBEDDED.live_page);
  const TOKEN = new URLSearchParams(location.search).get('token');
  let DATA = LIVE ? null : EMBEDDED;
  const PALETTE = ['#3b6fd8', '#e0731f', '#2a9d4b', '#c23b8f', '#7b52c9', '#1b9aaa', '#b58a00',
    '#d0413a', '#5c7a29', '#8a5a44', '#4b5d9c', '#cc6f9e'];
  const EXIT_CODES = {
    0: 'passed', 1: 'requests failed or tasks raised exceptions', 2: 'bad input',
    3: 'the results could not be saved', 99: 'a threshold failed',
  };
  const SYNC = uPlot.sync('horde');
  const charts = [];
  const plots = {}; // chart id -> uPlot
  let range = null; // [from, to] seconds since the start, or null for the whole run

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value; else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return '–';
    return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits ?? 2, minimumFractionDigits: 0 });
  }

  function when(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '–'; }

  // ---- header and verdict ----

  function drawHeader() {
    const m = DATA.meta, r = DATA.report;
    const rows = [
      ['Scenario', m.scenario], ['SHA-256', el('code', {}, m.sha256)],
      ['Command line', el('code', {}, (m.command_line || []).join(' '))],
      ['Load model', m.model], ['Host', m.host || '(none)'],
      ['Granted destinations', (m.grants || []).join(', ') || '(none)'],
      ['Started', when(m.started_at_ms)], ['Ended', when(m.ended_at_ms)],
      ['Duration', fmt(r.duration_s, 1) + ' s'], ['Stop reason', m.stop_reason || '–'],
    ];
    const dl = el('dl', { class: 'meta' });
    for (const [key, value] of rows) dl.append(el('dt', {}, key), el('dd', {}, value));
    document.getElementById('header').replaceChildren(el('h1', {}, LIVE ? 'Horde (live): ' : 'Horde report: ', m.scenario), dl);
    document.title = (LIVE ? 'Horde (live): ' : 'Horde report: ') + m.scenario;
    document.getElementById('footer').replaceChildren('Horde ' + m.version + ' · percentiles from HDR histograms ' +
      '(exact for the whole run; within 2% for a selected range)');
  }

  function drawVerdict() {
    const m = DATA.meta, r = DATA.report;
    const section = document.getElementById('verdict');
    section.replaceChildren();
    const passed = m.exit_code === 0;
    if (m.exit_code === null || m.exit_code === undefined) {
      section.append(el('div', { class: 'verdict live', id: 'exit-code' }, 'Running'));
    } else section.append(el('div', { class: 'verdict ' + (passed ? 'pass' : 'fail'), id: 'exit-code' },
      (passed ? 'Passed' : 'Failed') + ' · exit code ' + m.exit_code + ': ' + (EXIT_CODES[m.exit_code] || 'error')));
    if (m.misuse) section.append(el('p', { class: 'fail-text' }, m.misuse));
    if (r.thresholds.length) {
      const table = el('table', { class: 'data', id: 'thresholds' });
      table.append(el('tr', {}, el('th', { class: 'text' }, 'Threshold'), el('th', { class: 'text' }, 'Condition'),
        el('th', {}, 'Actual'), el('th', {}, 'Result')));
      for (const v of r.thresholds) {
        table.append(el('tr', {}, el('td', { class: 'text' }, v.threshold), el('td', { class: 'text' }, v.condition),
          el('td', {}, fmt(v.actual, 3)), el('td', { class: v.passed ? 'pass-text' : 'fail-text' }, v.passed ? 'pass' : 'fail')));
      }
      section.append(el('h2', {}, 'Thresholds'), table);
    }
    if (r.checks.length) {
      const table = el('table', { class: 'data', id: 'checks' });
      table.append(el('tr', {}, el('th', { class: 'text' }, 'Check'), el('th', {}, 'Passes'), el('th', {}, 'Fails'),
        el('th', {}, 'Pass rate')));
      for (const c of r.checks) {
        const total = c.passes + c.fails;
        table.append(el('tr', {}, el('td', { class: 'text' }, c.name), el('td', {}, fmt(c.passes, 0)),
          el('td', { class: c.fails ? 'fail-text' : '' }, fmt(c.fails, 0)),
          el('td', {}, total ? fmt(100 * c.passes / total, 2) + ' %' : '–')));
      }
      section.append(el('h2', {}, 'Checks'), table);
    }
  }

  // ---- histograms of the slots ----

  let S = null, RATIO = 1.02, openModel = false, COLUMNS = [];
  const slotStart = (i) => (i === 0 ? Math.max(0, S.slot_t[0] - S.slot_width[0]) : S.slot_t[i - 1]);

  function slotsIn(from, to) {
    const picked = [];
    for (let i = 0; i < S.slot_t.length; i++) {
      if (S.slot_t[i] > from && slotStart(i) < to) picked.push(i);
    }
    return picked;
  }

  // Merge the encoded histograms of `slots` into a Map bucket -> count.
  function merged(encodedPerSlot, slots, into) {
    const buckets = into || new Map();
    for (const i of slots) {
      const flat = encodedPerSlot[i];
      if (!Array.isArray(flat)) continue;
      let bucket = 0;
      for (let k = 0; k < flat.length; k += 2) {
        bucket += flat[k];
        buckets.set(bucket, (buckets.get(bucket) || 0) + flat[k + 1]);
      }
    }
    return buckets;
  }

  // Summary in ms of a Map bucket -> count: count, min, mean, max, and `at(q)`.
  function summarize(buckets) {
    const keys = [...buckets.keys()].sort((a, b) => a - b);
    let count = 0, sum = 0;
    for (const k of keys) { count += buckets.get(k); sum += buckets.get(k) * Math.pow(RATIO, k - 0.5); }
    // A bucket's value is its geometric middle: within 1% of every latency in it.
    const ms = (k) => Math.pow(RATIO, k - 0.5) / 1000;
    const at = (q) => {
      if (!count) return null;
      const target = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (const k of keys) { seen += buckets.get(k); if (seen >= target) return ms(k); }
      return ms(keys[keys.length - 1]);
    };
    return { count, min: count ? ms(keys[0]) : null, mean: count ? sum / count / 1000 : null, max: count ? ms(keys[keys.length - 1]) : null, at };
  }

  // ---- the request table ----

  function derive() {
    S = DATA.series;
    RATIO = S.ratio;
    openModel = DATA.report.stats.some((s) => s.corrected_latency_ms);
    COLUMNS = BASE_COLUMNS.concat(openModel ? CORRECTED_COLUMNS : [], [['Statuses', 'statuses', true]]);
  }
  const BASE_COLUMNS = [
    ['Type', 'type', true], ['Name', 'name', true], ['Requests', 'count'], ['Failures', 'failures'],
    ['Req/s', 'rps'], ['Bytes/s', 'bytes_s'], ['Min', 'min'], ['Mean', 'mean'], ['p50', 'p50'], ['p90', 'p90'],
    ['p95', 'p95'], ['p99', 'p99'], ['p99.9', 'p99.9'], ['Max', 'max'],
  ];
  const CORRECTED_COLUMNS = [['p50 corr.', 'c50'], ['p95 corr.', 'c95'], ['p99 corr.', 'c99']];
  let sortKey = null, sortDesc = false;

  function rowFromReport(s, duration) {
    const l = s.latency_ms, c = s.corrected_latency_ms;
    return {
      type: s.type || '', name: s.name, count: s.count, failures: s.failures, rps: s.rps,
      bytes_s: duration > 0 ? s.bytes / duration : 0, min: l.min, mean: l.mean, p50: l.p50, p90: l.p90,
      p95: l.p95, p99: l.p99, 'p99.9': l['p99.9'], max: l.max,
      c50: c ? c.p50 : null, c95: c ? c.p95 : null, c99: c ? c.p99 : null,
      statuses: Object.entries(s.status_codes || {}).map(([code, n]) => code + ': ' + fmt(n, 0)).join(', '),
    };
  }

  function rowFromSlots(type, name, indexes, slots, seconds) {
    let count = 0, failures = 0, bytes = 0;
    const latency = new Map(), corrected = new Map();
    for (const n of indexes) {
      for (const i of slots) {
        count += S.slot_requests[n][i] || 0;
        failures += S.slot_failures[n][i] || 0;
        bytes += S.slot_bytes[n][i] || 0;
      }
      merged(S.slot_latency[n], slots, latency);
      if (S.slot_corrected) merged(S.slot_corrected[n], slots, corrected);
    }
    const l = summarize(latency), c = summarize(corrected);
    return {
      type, name, count, failures, rps: seconds > 0 ? count / seconds : 0, bytes_s: seconds > 0 ? bytes / seconds : 0,
      min: l.min, mean: l.mean, p50: l.at(0.5), p90: l.at(0.9), p95: l.at(0.95), p99: l.at(0.99), 'p99.9': l.at(0.999),
      max: l.max, c50: c.at(0.5), c95: c.at(0.95), c99: c.at(0.99),
      statuses: '',
    };
  }

  function tableRows() {
    if (!range) {
      const r = DATA.report;
      return { rows: r.stats.map((s) => rowFromReport(s, r.duration_s)), total: rowFromReport({ ...r.total, type: '', name: 'Aggregated' }, r.duration_s) };
    }
    const slots = slotsIn(range[0], range[1]);
    const seconds = slots.reduce((sum, i) => sum + (S.slot_t[i] - slotStart(i)), 0);
    const rows = S.names.map(([type, name], n) => rowFromSlots(type, name, [n], slots, seconds)).filter((row) => row.count > 0);
    const total = rowFromSlots('', 'Aggregated', S.names.map((_, n) => n), slots, seconds);
    return { rows, total };
  }

  function drawTable() {
    const table = document.getElementById('stats');
    table.replaceChildren();
    const head = el('tr', {});
    for (const [label, key, text] of COLUMNS) {
      const th = el('th', { class: text ? 'text' : '', 'data-key': key }, label);
      if (key === sortKey) th.classList.add(sortDesc ? 'sorted-desc' : 'sorted-asc');
      th.addEventListener('click', () => {
        sortDesc = sortKey === key ? !sortDesc : !text;
        sortKey = key;
        drawTable();
      });
      head.append(th);
    }
    table.append(el('thead', {}, head));
    const { rows, total } = tableRows();
    if (sortKey) {
      rows.sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        const order = typeof x === 'string' ? x.localeCompare(y) : (x ?? -1) - (y ?? -1);
        return sortDesc ? -order : order;
      });
    }
    const body = el('tbody', {});
    for (const row of rows.concat([total])) {
      const tr = el('tr', { class: row === total ? 'total' : '' });
      for (const [, key, text] of COLUMNS) {
        const value = row[key];
        const digits = key === 'count' || key === 'failures' ? 0 : key === 'bytes_s' ? 0 : 2;
        const cell = el('td', { class: text ? 'text' : '' }, text ? value : fmt(value, digits));
        if (key === 'failures' && value > 0) cell.classList.add('fail-text');
        tr.append(cell);
      }
      body.append(tr);
    }
    table.append(body);
    const note = document.getElementById('range');
    note.replaceChildren();
    if (range) {
      const slots = slotsIn(range[0], range[1]);
      const from = slots.length ? slotStart(slots[0]) : range[0];
      const to = slots.length ? S.slot_t[slots[slots.length - 1]] : range[1];
      const reset = el('button', { type: 'button', id: 'range-reset' }, 'Show the whole run');
      reset.addEventListener('click', () => setRange(null));
      note.append(el('span', { id: 'range-label' }, 'Time range ' + fmt(from, 1) + ' s – ' + fmt(to, 1) + ' s (' +
        S.slot_ticks + ' s slots; statuses are counted for the whole run only)'), reset);
    } else {
      note.append(el('span', { id: 'range-label', class: 'hint' }, 'Whole run'));
    }
  }

  function setRange(next) {
    range = next;
    if (!next) for (const chart of charts) chart.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
    drawTable();
    drawPercentilePlot();
  }

  // ---- charts ----

  function forget(id) {
    const plot = plots[id];
    if (!plot) return;
    plot.destroy();
    delete plots[id];
    charts.splice(charts.indexOf(plot), 1);
  }

  function chart(id, series, data, axes, empty) {
    const target = document.getElementById(id);
    const old = plots[id];
    const labels = series.map((s) => s.label).join('\n');
    if (old && old.hordeLabels === labels && data[0].length) {
      old.setData(data);
      return old;
    }
    forget(id);
    target.replaceChildren();
    if (!data[0].length || !series.length) { target.append(el('div', { class: 'empty' }, empty || 'no data')); return null; }
    const options = {
      width: Math.max(320, target.clientWidth || 600), height: 240, series: [{ label: 't (s)' }].concat(series),
      scales: { x: { time: false } },
      axes: axes || [{ label: 'seconds' }, {}],
      cursor: { sync: { key: SYNC.key }, drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 2) return;
          const from = u.posToVal(u.select.left, 'x'), to = u.posToVal(u.select.left + u.select.width, 'x');
          setRange([from, to]);
        }],
      },
    };
    const plot = new uPlot(options, data, target);
    plot.hordeLabels = labels;
    plots[id] = plot;
    charts.push(plot);
    return plot;
  }

  const line = (label, color, extra) => Object.assign({ label, stroke: color, width: 1.5, spanGaps: false }, extra || {});
  const perSlotRate = (values) => values.map((v, i) => v / Math.max(1e-3, S.slot_t[i] - slotStart(i)));

  function drawCharts() {
    chart('chart-users', [line('users', PALETTE[0], { scale: 'users' }), line('iterations/s', PALETTE[1])],
      [S.t, S.users, S.iterations.map((v, i) => v / Math.max(1e-3, S.t[i] - (i ? S.t[i - 1] : 0)))],
      [{ label: 'seconds' }, {}, { scale: 'users', side: 1, grid: { show: false } }]);
    chart('chart-rps', [line('requests/s', PALETTE[0]), line('failures/s', '#d0413a')],
      [S.t, S.requests.map((v, i) => v / Math.max(1e-3, S.t[i] - (i ? S.t[i - 1] : 0))),
        S.failures.map((v, i) => v / Math.max(1e-3, S.t[i] - (i ? S.t[i - 1] : 0)))]);
    const quantiles = ['p50', 'p90', 'p95', 'p99'];
    const latencySeries = quantiles.map((q, i) => line(q, PALETTE[i]));
    const latencyData = [S.t].concat(quantiles.map((q) => S[q]));
    if (S.corrected) {
      quantiles.forEach((q, i) => { latencySeries.push(line(q + ' corrected', PALETTE[i], { dash: [6, 4] })); latencyData.push(S.corrected[q]); });
    } else {
      for (const note of document.querySelectorAll('.corrected-note')) note.remove();
    }
    chart('chart-latency', latencySeries, latencyData);
    chart('chart-names', S.names.map(([type, name], n) => line(type + ' ' + name, PALETTE[n % PALETTE.length])),
      [S.slot_t].concat(S.names.map((_, n) => perSlotRate(S.slot_requests[n]))));
    const select = document.getElementById('latency-name');
    if (select.options.length !== S.names.length) {
      const chosen = select.value;
      select.replaceChildren();
      S.names.forEach(([type, name], n) => select.append(el('option', { value: String(n) }, type + ' ' + name)));
      if (chosen) select.value = chosen;
    }
    if (!select.hordeListening) { select.addEventListener('change', drawNameLatency); select.hordeListening = true; }
    drawNameLatency();
    chart('chart-errors', S.messages.map((message, m) => line(message, PALETTE[m % PALETTE.length])),
      [S.slot_t].concat(S.messages.map((_, m) => perSlotRate(S.slot_errors[m]))), undefined, 'no failures');
  }

  function drawNameLatency() {
    const n = Number(document.getElementById('latency-name').value || 0);
    if (!S.names.length) { chart('chart-name-latency', [], [[]]); return; }
    const quantiles = [0.5, 0.9, 0.95, 0.99];
    const series = quantiles.map((q, i) => line('p' + q * 100, PALETTE[i]));
    const data = [S.slot_t];
    const perSlot = (encoded) => S.slot_t.map((_, i) => summarize(merged(encoded, [i])));
    const plain = perSlot(S.slot_latency[n]);
    quantiles.forEach((q) => data.push(plain.map((s) => s.at(q))));
    if (S.slot_corrected) {
      const corrected = perSlot(S.slot_corrected[n]);
      quantiles.forEach((q, i) => { series.push(line('p' + q * 100 + ' corrected', PALETTE[i], { dash: [6, 4] })); data.push(corrected.map((s) => s.at(q))); });
    }
    chart('chart-name-latency', series, data);
  }

  // Latency at every percentile: x is -log10(1 - p), so 90%, 99%, 99.9% are evenly spaced.
  function drawPercentilePlot() {
    forget('chart-hdr');
    const slots = range ? slotsIn(range[0], range[1]) : S.slot_t.map((_, i) => i);
    const xs = [];
    for (let x = 0; x <= 4.0001; x += 0.05) xs.push(Math.round(x * 100) / 100);
    const series = [], data = [xs];
    S.names.forEach(([type, name], n) => {
      const s = summarize(merged(S.slot_latency[n], slots));
      if (!s.count) return;
      series.push(line(type + ' ' + name, PALETTE[n % PALETTE.length]));
      data.push(xs.map((x) => s.at(1 - Math.pow(10, -x))));
    });
    const target = document.getElementById('chart-hdr');
    target.replaceChildren();
    if (!series.length) { target.append(el('div', { class: 'empty' }, 'no requests')); return; }
    const plot = new uPlot({
      width: Math.max(320, target.clientWidth || 900), height: 300, series: [{ label: 'percentile', value: (u, x) => (x === null ? '–' : fmt(100 * (1 - Math.pow(10, -x)), 3) + ' %') }].concat(series),
      scales: { x: { time: false } },
      axes: [{ label: 'percentile', values: (u, ticks) => ticks.map((x) => fmt(100 * (1 - Math.pow(10, -x)), 4) + '%') }, { label: 'ms' }],
    }, data, target);
    plots['chart-hdr'] = plot;
    charts.push(plot);
  }

  // ---- failures and custom metrics ----

  function drawFailures() {
    const r = DATA.report, section = document.getElementById('failures');
    section.replaceChildren();
    if (!r.errors.length && !r.exceptions.length) return;
    section.append(el('h2', {}, 'Failures'));
    if (r.errors.length) {
      const table = el('table', { class: 'data', id: 'errors' });
      table.append(el('tr', {}, el('th', { class: 'text' }, 'Type'), el('th', { class: 'text' }, 'Name'),
        el('th', { class: 'text' }, 'Message'), el('th', {}, 'Count')));
      for (const e of r.errors) table.append(el('tr', {}, el('td', { class: 'text' }, e.type || ''), el('td', { class: 'text' }, e.name), el('td', { class: 'text' }, e.message), el('td', {}, fmt(e.count, 0))));
      section.append(el('div', { class: 'scroll' }, table));
    }
    if (r.exceptions.length) {
      const table = el('table', { class: 'data', id: 'exceptions' });
      table.append(el('tr', {}, el('th', { class: 'text' }, 'Exception'), el('th', {}, 'Count')));
      for (const e of r.exceptions) table.append(el('tr', {}, el('td', { class: 'text' }, e.message), el('td', {}, fmt(e.count, 0))));
      section.append(el('h2', {}, 'Exceptions'), table);
    }
  }

  function drawMetrics() {
    const m = DATA.report.metrics, section = document.getElementById('metrics');
    section.replaceChildren();
    const rows = [];
    for (const [name, c] of Object.entries(m.counters || {})) rows.push([name, 'counter', 'total ' + fmt(c.total) + ', ' + fmt(c.rate) + '/s']);
    for (const [name, g] of Object.entries(m.gauges || {})) rows.push([name, 'gauge', 'last ' + fmt(g.value) + ', min ' + fmt(g.min) + ', max ' + fmt(g.max)]);
    for (const [name, t] of Object.entries(m.trends || {})) {
      rows.push([name, 'trend', 'count ' + fmt(t.count, 0) + ', avg ' + fmt(t.avg) + ', min ' + fmt(t.min) + ', med ' + fmt(t.med) +
        ', p90 ' + fmt(t.p90) + ', p95 ' + fmt(t.p95) + ', p99 ' + fmt(t.p99) + ', max ' + fmt(t.max)]);
    }
    if (!rows.length) return;
    const table = el('table', { class: 'data', id: 'custom-metrics' });
    table.append(el('tr', {}, el('th', { class: 'text' }, 'Metric'), el('th', { class: 'text' }, 'Kind'), el('th', { class: 'text' }, 'Values')));
    for (const [name, kind, values] of rows) table.append(el('tr', {}, el('td', { class: 'text' }, name), el('td', { class: 'text' }, kind), el('td', { class: 'text' }, values)));
    section.append(el('h2', {}, 'Custom metrics'), table);
  }

  function drawAll() {
    derive();
    drawHeader();
    drawVerdict();
    drawTable();
    drawCharts();
    drawPercentilePlot();
    drawFailures();
    drawMetrics();
    if (LIVE) drawControls();
  }

  // ---- the live page's controls (as Locust's) ----

  const withToken = (path) => (TOKEN ? path + '?token=' + encodeURIComponent(TOKEN) : path);
  const edited = new Set();

  function say(text, error) {
    const message = document.getElementById('control-message');
    message.textContent = text;
    message.className = error ? 'error' : '';
  }

  async function control(path, body) {
    const headers = { 'Content-Type': 'application/json' };
    if (TOKEN) headers['X-Horde-Token'] = TOKEN;
    const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body || {}) });
    if (!response.ok) { say(await response.text(), true); return false; }
    return true;
  }

  function drawControls() {
    const live = DATA.live || {};
    const section = document.getElementById('controls');
    section.hidden = false;
    const state = live.state || 'starting';
    document.getElementById('live-state').textContent = state === 'running' ? 'Running' : state === 'stopping' ? 'Stopping' : state === 'finished' ? 'Finished' : 'Starting';
    const closed = live.model === 'closed' || live.model === 'stages';
    document.getElementById('users-control').hidden = !closed;
    document.getElementById('rate-control').hidden = live.model !== 'open';
    const set = (id, value) => { if (!edited.has(id) && value !== undefined) document.getElementById(id).value = value; };
    set('users', live.users);
    set('spawn-rate', live.spawn_rate);
    set('rate', live.rate);
    const over = state === 'finished' || state === 'stopping';
    if (state === 'finished') say('The run has ended; these are its final results.');
    for (const id of ['apply-users', 'apply-rate', 'stop', 'reset']) document.getElementById(id).disabled = over;
  }

  function wireControls() {
    for (const id of ['users', 'spawn-rate', 'rate']) document.getElementById(id).addEventListener('input', () => edited.add(id));
    document.getElementById('apply-users').addEventListener('click', async () => {
      const users = Number(document.getElementById('users').value);
      const spawnRate = Number(document.getElementById('spawn-rate').value || 1);
      if (await control('api/users', { users, spawn_rate: spawnRate })) {
        edited.delete('users'); edited.delete('spawn-rate');
        say('Going to ' + users + ' users at ' + spawnRate + '/s');
      }
    });
    document.getElementById('apply-rate').addEventListener('click', async () => {
      const rate = Number(document.getElementById('rate').value);
      if (await control('api/rate', { rate })) { edited.delete('rate'); say('Arrival rate ' + rate + '/s'); }
    });
    document.getElementById('stop').addEventListener('click', async () => { if (await control('api/stop')) say('Stopping'); });
    document.getElementById('reset').addEventListener('click', async () => { if (await control('api/reset')) say('Statistics reset'); });
    for (const [id, path] of [['download-report', 'report.html'], ['download-stats', 'stats.csv'],
      ['download-failures', 'failures.csv'], ['download-exceptions', 'exceptions.csv']]) {
      document.getElementById(id).href = withToken(path);
    }
  }

  if (LIVE) {
    wireControls();
    const events = new EventSource(withToken('events'));
    events.onmessage = (event) => {
      const next = JSON.parse(event.data);
      if (!next) return;
      DATA = next;
      drawAll();
      window.horde.data = DATA;
      window.horde.updates += 1;
    };
  } else {
    drawAll();
  }
  // Tests read what the page drew and select ranges through this.
  window.horde = { data: DATA, setRange, charts, updates: 0 };
}());
