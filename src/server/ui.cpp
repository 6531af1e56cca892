#include "server/ui.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace pl::server {

namespace {

// Every number comes from GET /api/ps, the same source as `parallama ps`: the parallel limit
// and its source, running / queued, KV use and tokens_per_second (the server's rate over the
// last few seconds), so the page and the terminal agree.
// Stable hooks for tests and scripts: #models-body tr[data-model] > td[data-field][data-value]
// (data-value is /api/ps's value as it came), #total-tps[data-value],
// #throughput-chart[data-points][data-unit], #status[data-state], #polls[data-count].
// A value the server does not report has data-value="".
const char* const kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>parallama</title>
<style>
:root { --bg: #fafafa; --fg: #1d1d1f; --muted: #6e6e73; --line: #e0e0e0; --card: #fff; --accent: #1f5fa8; --warn: #c8412c; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #161618; --fg: #ececec; --muted: #9a9aa0; --line: #333; --card: #1f1f22; --accent: #6aa5ea; --warn: #ee6b55; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 28px; background: var(--bg); color: var(--fg);
       font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: baseline; gap: 14px; margin-bottom: 16px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; }
.muted, small { color: var(--muted); }
#status::before { content: "\25CF "; }
#status[data-state="ok"]::before { color: #2c9a4a; }
#status[data-state="error"]::before, #status[data-state="loading"]::before { color: var(--warn); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px 6px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; }
th.num { text-align: right; }
.src { color: var(--muted); font-size: 12px; }
.slots { display: inline-flex; flex-wrap: wrap; gap: 2px; max-width: 180px; vertical-align: middle; margin-left: 6px; }
.slot { width: 9px; height: 9px; border-radius: 2px; border: 1px solid var(--accent); }
.slot.busy { background: var(--accent); }
.bar { display: inline-block; width: 80px; height: 8px; border-radius: 4px; background: var(--line); vertical-align: middle; margin-right: 6px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
.bar.high > span { background: var(--warn); }
.queued { color: var(--warn); font-weight: 600; }
#throughput-chart { width: 100%; height: auto; display: block; }
#throughput-chart text { fill: var(--muted); font-size: 11px; }
#throughput-chart .grid { stroke: var(--line); }
#chart-legend span { margin-right: 14px; }
#chart-legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 5px; }
footer { color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>parallama</h1>
  <span id="version" class="muted"></span>
  <span id="status" data-state="loading">connecting&hellip;</span>
</header>
<section>
  <h2>Loaded models</h2>
  <table id="models">
    <thead><tr>
      <th>model</th><th class="num">parallel</th><th>source</th><th class="num">running</th><th class="num">queued</th>
      <th>KV cache</th><th class="num">tokens/s</th><th class="num">context</th><th class="num">size</th><th>until</th>
    </tr></thead>
    <tbody id="models-body"></tbody>
  </table>
  <p id="no-models" class="muted" hidden>No model is loaded. Run a request and it shows up here.</p>
</section>
<section>
  <h2><span id="chart-title">Throughput</span>: <span id="total-tps" data-value="">&ndash;</span>
    <span id="total-unit">tokens/s</span> <small id="tps-source"></small></h2>
  <svg id="throughput-chart" viewBox="0 0 800 220" data-points="0" data-unit="tokens/s" role="img"
       aria-label="throughput over the last two minutes"></svg>
  <div id="chart-legend" class="muted"></div>
</section>
<footer>Polls <code>/api/ps</code> every second
  (<span id="polls" data-count="0">0</span> polls, last <span id="updated">never</span>).</footer>
<script>
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const HISTORY_S = 120;
  const COLORS = ['#1f5fa8', '#c8412c', '#2c7a3a', '#8a4fb0', '#c08a00', '#0f8a8a', '#b0417a'];
  const st = { polls: 0, samples: [], colors: {} };

  const esc = (s) => String(s).replace(/[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const color = (m) => st.colors[m] || (st.colors[m] = COLORS[Object.keys(st.colors).length % COLORS.length]);

  function human(b) {
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = b, i = 0;
    while (v >= 1000 && i < 4) { v /= 1000; i++; }
    return i ? v.toFixed(v < 10 ? 1 : 0) + ' ' + u[i] : b + ' B';
  }
  function until(iso) {
    const s = (Date.parse(iso) - Date.now()) / 1000;
    if (!isFinite(s)) return '';
    if (s > 100 * 365 * 86400) return 'forever';
    if (s <= 0) return 'stopping\u2026';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }
  // null on any failure (server down, an error status).
  async function get(path) {
    try {
      const r = await fetch(path, { cache: 'no-store' });
      if (!r.ok) return null;
      return await r.json();
    } catch (e) {
      return null;
    }
  }
  function cell(field, value, html, cls) {
    const v = value === undefined || value === null ? '' : value;
    return '<td data-field="' + field + '" data-value="' + esc(v) + '"' + (cls ? ' class="' + cls + '"' : '') + '>' +
        (html === undefined ? esc(v) : html) + '</td>';
  }
  function slots(limit, running) {
    const n = Math.min(limit, 32);
    let s = '<span class="slots" title="' + running + ' of ' + limit + ' slots busy">';
    for (let i = 0; i < n; i++) s += '<span class="slot' + (i < running ? ' busy' : '') + '"></span>';
    return s + '</span>';
  }
  function kvCell(m) {
    if (typeof m.kv_used !== 'number') return cell('kv_used', '', '<span class="muted">&ndash;</span>');
    const pct = Math.round(m.kv_used * 100);
    let text = pct + '%';
    if (typeof m.kv_blocks_used === 'number' && typeof m.kv_blocks_total === 'number')
      text += ' <span class="src">(' + m.kv_blocks_used + '/' + m.kv_blocks_total + ' blocks)</span>';
    return cell('kv_used', m.kv_used, '<span class="bar' + (pct >= 90 ? ' high' : '') + '"><span style="width:' +
        Math.min(100, pct) + '%"></span></span>' + text);
  }
  function row(m) {
    const name = m.name || m.model;
    const limit = m.num_parallel ?? 0, source = m.parallel_source ?? '';
    const running = m.running ?? 0, queued = m.queued ?? 0;
    const rate = typeof m.tokens_per_second === 'number' ? m.tokens_per_second : null;
    return '<tr data-model="' + esc(name) + '">' +
        cell('model', name, '<b>' + esc(name) + '</b>') +
        cell('num_parallel', limit, esc(limit) +
            (m.max_parallel ? ' <span class="src" title="the most the KV pool allows">/ ' +
             esc(m.max_parallel) + '</span>' : ''), 'num') +
        cell('parallel_source', source, '<span class="src">' + esc(source) + '</span>') +
        cell('running', running, esc(running) + slots(limit, running), 'num') +
        cell('queued', queued, queued > 0 ? '<span class="queued">' + esc(queued) + '</span>' : '0', 'num') +
        kvCell(m) +
        cell('tokens_per_s', rate === null ? '' : rate, rate === null ? '&ndash;' : rate.toFixed(1), 'num') +
        cell('context_length', m.context_length ?? '', undefined, 'num') +
        cell('size', m.size ?? '', m.size ? human(m.size) : '', 'num') +
        cell('expires_at', m.expires_at ?? '', esc(until(m.expires_at))) + '</tr>';
  }
  function niceStep(max) {
    const raw = max / 4, mag = Math.pow(10, Math.floor(Math.log10(raw))), n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
  }
  function drawChart(unit) {
    const W = 800, H = 220, L = 52, R = 12, T = 10, B = 24, pw = W - L - R, ph = H - T - B;
    const now = Date.now(), s = st.samples;
    const models = [...new Set(s.flatMap((x) => Object.keys(x.v)))];
    let max = 0;
    for (const x of s) {
      let total = 0;
      for (const k in x.v) { total += x.v[k]; max = Math.max(max, x.v[k]); }
      if (models.length > 1) max = Math.max(max, total);
    }
    const step = niceStep(max > 0 ? max : 1), top = Math.max(step, Math.ceil(max / step) * step);
    const X = (t) => L + pw * (1 - (now - t) / 1000 / HISTORY_S), Y = (v) => T + ph * (1 - v / top);
    let g = '';
    for (let v = 0; v <= top + step / 2; v += step) {
      g += '<line class="grid" x1="' + L + '" x2="' + (L + pw) + '" y1="' + Y(v) + '" y2="' + Y(v) + '"/>';
      g += '<text x="' + (L - 6) + '" y="' + (Y(v) + 4) + '" text-anchor="end">' + (+v.toFixed(6)) + '</text>';
    }
    for (let a = 0; a <= HISTORY_S; a += 30)
      g += '<text x="' + (L + pw * (1 - a / HISTORY_S)) + '" y="' + (H - 6) + '" text-anchor="middle">' +
          (a ? '-' + a + ' s' : 'now') + '</text>';
    const line = (vals, col, width, extra) => '<polyline fill="none" stroke="' + col + '" stroke-width="' + width +
        '" ' + (extra || '') + ' points="' + vals.map((p) => X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1)).join(' ') + '"/>';
    for (const m of models)
      g += line(s.filter((x) => m in x.v).map((x) => [x.t, x.v[m]]), color(m), 2, 'data-model="' + esc(m) + '"');
    if (models.length > 1)
      g += line(s.map((x) => [x.t, Object.values(x.v).reduce((a, b) => a + b, 0)]), 'currentColor', 1.5,
          'stroke-dasharray="4 3" opacity="0.7"');
    const svg = $('throughput-chart');
    svg.innerHTML = g;
    svg.dataset.points = s.length;
    svg.dataset.unit = unit;
    $('chart-legend').innerHTML = models.map((m) => '<span><i style="background:' + color(m) + '"></i>' + esc(m) +
        '</span>').join('') + (models.length > 1 ? '<span>- - total</span>' : '');
  }
  function setStatus(state, text) {
    const el = $('status');
    el.dataset.state = state;
    el.textContent = text;
  }
  async function poll() {
    const ps = await get('/api/ps');
    st.polls++;
    $('polls').dataset.count = st.polls;
    $('polls').textContent = st.polls;
    $('updated').textContent = new Date().toLocaleTimeString();
    if (!ps || !Array.isArray(ps.models)) {
      setStatus('error', 'cannot reach /api/ps');
      return;
    }
    setStatus('ok', 'live');
    $('models-body').innerHTML = ps.models.map(row).join('');
    $('no-models').hidden = ps.models.length > 0;

    // Tokens/s per model as /api/ps reports it; a server too old to report it charts
    // running requests instead.
    const tps = ps.models.length === 0 || ps.models.some((m) => typeof m.tokens_per_second === 'number');
    const unit = tps ? 'tokens/s' : 'running';
    const v = {};
    for (const m of ps.models) {
      const name = m.name || m.model;
      v[name] = tps ? (m.tokens_per_second || 0) : (m.running || 0);
    }
    const total = Object.values(v).reduce((a, b) => a + b, 0);
    st.samples.push({ t: Date.now(), v });
    while (st.samples.length && Date.now() - st.samples[0].t > HISTORY_S * 1000) st.samples.shift();
    $('chart-title').textContent = tps ? 'Throughput' : 'Running requests';
    $('total-unit').textContent = unit;
    $('total-tps').dataset.value = tps ? total.toFixed(2) : '';
    $('total-tps').textContent = tps ? total.toFixed(1) : String(total);
    $('tps-source').textContent = tps ? '(generated, last few seconds)' : '(this server reports no tokens/s: showing running requests)';
    drawChart(unit);
  }
  async function loop() {
    try { await poll(); } catch (e) { setStatus('error', String(e)); }
    setTimeout(loop, 1000);
  }
  get('/api/version').then((v) => { if (v && v.version) $('version').textContent = 'v' + v.version; });
  loop();
})();
</script>
</body>
</html>
)HTML";

std::string lower_trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t"));
  s.erase(s.find_last_not_of(" \t") + 1);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void send_page(httplib::Response& res) {
  res.set_header("Cache-Control", "no-cache");
  // The page is self-contained: forbid anything but same-origin fetches and its own inline code.
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "img-src data:");
  res.set_content(ui_page(), "text/html; charset=utf-8");
}

}  // namespace

const std::string& ui_page() {
  static const std::string page = kPage;
  return page;
}

bool prefers_html(const std::string& accept) {
  double q_html = -1, q_plain = -1;
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    if (comma == std::string::npos) comma = accept.size();
    const std::string item = accept.substr(start, comma - start);
    start = comma + 1;
    const size_t semi = item.find(';');
    const std::string type = lower_trim(item.substr(0, semi));
    double q = 1;
    for (size_t p = semi; p != std::string::npos;) {
      const size_t next = item.find(';', p + 1);
      const size_t len = next == std::string::npos ? std::string::npos : next - p - 1;
      const std::string param = lower_trim(item.substr(p + 1, len));
      if (param.rfind("q=", 0) == 0) q = std::strtod(param.c_str() + 2, nullptr);
      p = next;
    }
    if (type == "text/html") q_html = std::max(q_html, q);
    if (type == "text/plain" || type == "text/*") q_plain = std::max(q_plain, q);
  }
  return q_html > 0 && q_html > q_plain;
}

void register_ui_routes(httplib::Server& svr) {
  svr.Get("/", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Vary", "Accept");
    if (prefers_html(req.get_header_value("Accept"))) return send_page(res);
    res.set_content("parallama is running", "text/plain; charset=utf-8");
  });
  svr.Get("/ui", [](const httplib::Request&, httplib::Response& res) { send_page(res); });
}

}  // namespace pl::server
