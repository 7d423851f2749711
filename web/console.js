// siterelay operator console: one page, four views (#overview, #devices, #files, #tools), fed by
// the admin JSON API (docs/admin.md) over the Basic auth the browser already sent for the page.
// The overview also lists held-back master configs (docs/admin.md, "Held configs") when any is.
// No framework and no build step. Every piece of data reaches the DOM through textContent or an
// attribute, never through innerHTML: device names, paths and error texts come from phones and
// origins we do not trust.
'use strict';

(() => {
  const REFRESH_MS = 5000;
  const SYNC_POLL_MS = 1000;
  const PAGES = ['overview', 'devices', 'files', 'tools'];
  const PROTOCOLS = ['http', 'https', 'tftp', 'ftp'];
  const DAY = 24 * 3600;

  const $ = (id) => document.getElementById(id);

  // el('td', {className: 'num', title: 'x'}, 'text', childNode...): attributes as properties,
  // except data-* and aria-* which go through setAttribute; strings become text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role') node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- Formatting -------------------------------------------------------------------------------

  function fmtBytes(n) {
    n = Number(n) || 0;
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n;
    let i = -1;
    do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
    return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
  }

  const numberFmt = new Intl.NumberFormat();
  const fmtCount = (n) => numberFmt.format(Number(n) || 0);

  // The relay's clock, as far as we can tell: the browser's corrected by the last skew seen.
  let clockSkew = 0;
  const serverNow = () => Date.now() / 1000 + clockSkew;

  function fmtAgo(t) {
    if (!t) return 'never';
    const d = Math.round(serverNow() - t);
    const a = Math.abs(d);
    let s;
    if (a < 10) return 'just now';
    if (a < 60) s = `${a} s`;
    else if (a < 3600) s = `${Math.floor(a / 60)} min`;
    else if (a < 2 * DAY) s = `${Math.floor(a / 3600)} h`;
    else s = `${Math.floor(a / DAY)} d`;
    return d >= 0 ? `${s} ago` : `in ${s}`;
  }

  const fmtAbs = (t) => (t ? new Date(t * 1000).toLocaleString() : '');

  function fmtDuration(sec) {
    sec = Math.max(0, Math.floor(sec));
    const d = Math.floor(sec / DAY);
    const h = Math.floor((sec % DAY) / 3600);
    const m = Math.floor((sec % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min`;
    return `${sec} s`;
  }

  // A relative time, with the absolute one in the title (and machine-readable in datetime).
  function timeNode(t) {
    if (!t) return el('span', {className: 'never'}, 'never');
    return el('time', {dateTime: new Date(t * 1000).toISOString(), title: fmtAbs(t)}, fmtAgo(t));
  }

  const macWithColons = (mac) => (mac || '').replace(/(..)(?!$)/g, '$1:');

  // ---- Fetching -------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message, reason) {
      super(message);
      this.status = status;
      this.reason = reason;  // the relay's {"error": ...}, else the status text
    }
  }

  // Relative URLs: the page may sit behind a path prefix, and the browser's Basic credentials for
  // this origin ride along.
  async function api(path, init) {
    const r = await fetch(path, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: {Accept: 'application/json'},
      ...init,
    });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok && r.status !== 202) {
      const why = body && typeof body.error === 'string' ? body.error : r.statusText;
      throw new HttpError(r.status, `${path}: ${r.status} ${why}`, why);
    }
    return {status: r.status, body};
  }
  const getJSON = async (path) => (await api(path)).body;

  function showError(err) {
    const banner = $('error-banner');
    if (!err) {
      banner.hidden = true;
      return;
    }
    banner.textContent = err.status === 401
      ? 'Not authorised: reload the page to enter the admin credentials again.'
      : `Cannot reach the relay (${err.message}). Retrying every ${REFRESH_MS / 1000} s.`;
    banner.hidden = false;
  }

  // ---- State and refresh ----------------------------------------------------------------------

  const state = {
    page: 'overview',
    status: null,
    history: null,
    toolsJSON: '',
    healthy: true,
    refreshSeq: 0,
    timer: 0,
    syncPolling: false,
    syncStarting: false,
    syncError: '',  // why the last "Sync now" was refused, shown until a pass runs
    configs: null,  // the last GET /api/v1/configs
    heldConfirm: '',  // the held config whose "Release now" waits for its confirmation
    releasing: '',  // the held config whose release is being posted
    heldNoteTimer: 0,
  };

  async function refresh() {
    clearTimeout(state.timer);
    const seq = ++state.refreshSeq;
    if (document.hidden) return;  // visibilitychange brings us back
    const jobs = [loadStatus()];
    if (state.page === 'overview') jobs.push(loadHistory(), loadConfigs());
    if (state.page === 'devices') jobs.push(loadTable(tables.devices, 'api/v1/devices'));
    if (state.page === 'files') jobs.push(loadTable(tables.files, 'api/v1/files'));
    if (state.page === 'tools') jobs.push(loadTools());
    const results = await Promise.allSettled(jobs);
    if (seq !== state.refreshSeq) return;  // a newer refresh (page change) owns the timer
    const failed = results.find((r) => r.status === 'rejected');
    showError(failed ? failed.reason : null);
    if (results[0].status === 'rejected') setHealth('down', 'unreachable');
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  async function loadStatus() {
    const [status, healthy] = await Promise.all([
      getJSON('api/v1/status'),
      fetch('healthz', {cache: 'no-store'}).then((r) => r.ok, () => false),
    ]);
    if (status.started && status.uptime_seconds !== undefined) {
      clockSkew = status.started + status.uptime_seconds - Date.now() / 1000;
    }
    state.status = status;
    state.healthy = healthy;
    renderHeader(status, healthy);
    renderOverview(status, healthy);
    if (status.sync) {
      renderSync(status.sync);
      if (status.sync.running) pollSync();
    }
  }

  function setHealth(level, label) {
    const dot = $('health-dot');
    dot.dataset.health = level;
    dot.setAttribute('aria-label', `health: ${label}`);
    dot.title = `health: ${label}`;
  }

  // Problems worth a yellow dot: what an operator should look at, not what is merely busy.
  function problems(s) {
    const out = [];
    const sync = s.sync || {};
    if (sync.configured && sync.started_at && !sync.running && sync.result && sync.result !== 'ok') {
      out.push('last sync failed');
    }
    if (s.log_spool && s.log_spool.dead_batches > 0) out.push(`${s.log_spool.dead_batches} dead log batches`);
    if (s.tls && s.tls.failures > 0 && s.tls.handshakes > 0 && s.tls.failures / s.tls.handshakes > 0.2) {
      out.push('many TLS handshake failures');
    }
    return out;
  }

  function renderHeader(s, healthy) {
    $('relay-version').textContent = s.version ? `v${s.version}` : '';
    document.title = `siterelay · ${location.hostname}`;
    if (!healthy) setHealth('down', 'a listener is down');
    else if (problems(s).length) setHealth('warn', problems(s).join(', '));
    else setHealth('ok', 'ok');
  }

  // ---- Overview ---------------------------------------------------------------------------------

  function setBig(id, text, level) {
    const node = $(id);
    node.textContent = text;
    node.classList.remove('ok', 'warn', 'bad');
    if (level) node.classList.add(level);
  }

  function renderOverview(s, healthy) {
    const issues = problems(s);
    if (!healthy) setBig('ov-health', 'Down', 'bad');
    else if (issues.length) setBig('ov-health', 'Degraded', 'warn');
    else setBig('ov-health', 'OK', 'ok');
    const up = $('ov-uptime');
    up.textContent = `up ${fmtDuration(s.uptime_seconds || 0)}${issues.length ? ' · ' + issues.join(', ') : ''}`;
    up.title = s.started ? `started ${fmtAbs(s.started)}` : '';
    $('ov-listeners').replaceChildren(...(s.listeners || []).map((l) =>
      el('li', {}, el('span', {className: 'proto'}, l.protocol), el('span', {className: 'mono'}, l.address))));

    const wan = s.wan || {};
    setBig('ov-wan-saved', fmtBytes(wan.saved_bytes));
    $('ov-wan-detail').textContent =
      `${fmtBytes(wan.served_bytes)} served to phones, ${fmtBytes(wan.origin_bytes)} over the WAN`;

    if (wan.served_bytes > 0) {
      const ratio = Math.max(0, 1 - wan.origin_bytes / wan.served_bytes);
      setBig('ov-hit-ratio', `${(ratio * 100).toFixed(1)} %`);
    } else {
      setBig('ov-hit-ratio', '—');
    }
    const c = s.cache || {};
    $('ov-cache').textContent = `cache: ${fmtCount(c.objects)} objects, ${fmtBytes(c.bytes)}`;

    const dev = s.devices;
    if (dev) {
      setBig('ov-devices', fmtCount(dev.total));
      const d = $('ov-devices-detail');
      d.replaceChildren(`${fmtCount(dev.seen_24h)} seen in 24 h`);
      if (dev.firmware_mismatch > 0) {
        d.append(' · ', el('span', {className: 'badge mismatch'}, `${fmtCount(dev.firmware_mismatch)} firmware mismatch`));
      }
    } else {
      setBig('ov-devices', '—');
    }

    const spool = s.log_spool || {};
    const out = s.outbox || {};
    const outboxText = `outbox: ${fmtCount(out.pending)} settings uploads pending`;
    if (spool.shipping) {
      const backlog = (spool.pending_bytes || 0) + (spool.unbatched_bytes || 0);
      setBig('ov-spool', fmtBytes(backlog), spool.dead_batches > 0 ? 'warn' : null);
      $('ov-spool-detail').textContent =
        `${fmtCount(spool.pending_batches)} log batches pending, ${fmtCount(spool.dead_batches)} dead · ${outboxText}`;
    } else {
      setBig('ov-spool', out.pending > 0 ? `${fmtCount(out.pending)} uploads` : 'empty');
      $('ov-spool-detail').textContent = `log shipping off · ${outboxText}`;
    }

    const o = s.origin || {};
    if (!o.configured) {
      setBig('ov-origin', 'none');
      $('ov-origin-detail').textContent = 'no [origin] url: serving what the cache holds';
    } else {
      setBig('ov-origin', o.failures > 0 ? `${fmtCount(o.failures)} failed` : 'OK', o.failures > 0 ? 'warn' : null);
      $('ov-origin-detail').textContent =
        `${o.url} · ${fmtCount(o.requests)} requests, ${fmtCount(o.in_flight)} in flight`;
    }

    const tls = s.tls;
    if (tls) {
      const bad = tls.handshakes > 0 && tls.failures / tls.handshakes > 0.2;
      setBig('ov-tls', fmtCount(tls.handshakes), bad ? 'warn' : null);
      $('ov-tls-detail').textContent = `${fmtCount(tls.failures)} failed`;
    } else {
      setBig('ov-tls', '—');
    }
  }

  async function loadHistory() {
    const h = await getJSON('api/v1/history');
    state.history = h;
    drawCharts();
  }

  // The last 24 h as fixed buckets ending with the current one; buckets the relay did not send
  // (no traffic) are zero.
  function historySlots(h) {
    const bucket = h.bucket_seconds > 0 ? h.bucket_seconds : 300;
    const now = h.now || Math.floor(serverNow());
    const last = Math.floor(now / bucket) * bucket;
    const n = Math.ceil(DAY / bucket);
    const first = last - (n - 1) * bucket;
    const byT = new Map();
    for (const p of h.points || []) byT.set(Math.floor(p.t / bucket) * bucket, p);
    const slots = [];
    for (let i = 0; i < n; i++) {
      const t = first + i * bucket;
      slots.push({t, p: byT.get(t) || null});
    }
    return {bucket, first, end: last + bucket, slots};
  }

  function drawCharts() {
    const h = state.history;
    if (!h || state.page !== 'overview') return;
    const {bucket, first, end, slots} = historySlots(h);
    const served = slots.map((s) => (s.p ? Number(s.p.served_bytes) || 0 : 0));
    const origin = slots.map((s) => (s.p ? Number(s.p.origin_bytes) || 0 : 0));
    drawChart($('chart-bytes'), $('legend-bytes'), {
      first, end, bucket, stacked: false, fmt: fmtBytes,
      label: 'Bytes per 5 minutes',
      series: [
        {name: 'Served locally', color: 'var(--s1)', values: served},
        {name: 'Fetched over the WAN', color: 'var(--s2)', values: origin},
      ],
    });
    drawChart($('chart-requests'), $('legend-requests'), {
      first, end, bucket, stacked: true, fmt: fmtCount,
      label: 'Requests per 5 minutes',
      series: PROTOCOLS.map((proto) => ({
        name: proto.toUpperCase(),
        color: `var(--p-${proto})`,
        values: slots.map((s) => (s.p && s.p.requests ? Number(s.p.requests[proto]) || 0 : 0)),
      })),
    });
  }

  // A round maximum for the y axis, so that the four gridlines get round labels: 1, 2, 4 or 8
  // times a power of ten, counted in the unit the labels use (KiB, MiB... for bytes).
  function niceMax(v, binary) {
    if (v <= 0) return 4;
    let unit = 1;
    if (binary) while (v / unit >= 1024) unit *= 1024;
    const x = v / unit;
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    for (const m of [1, 2, 4, 8, 10]) if (m * p >= x) return Math.max(4, m * p) * unit;
    return 10 * p * unit;
  }

  // One chart as inline SVG sized to its box in CSS pixels (so text is not stretched): a line
  // and a light area per series, stacked or overlaid, gridlines with y labels, time labels every
  // 6 hours, a legend with each series' 24 h total.
  function drawChart(box, legend, c) {
    const W = Math.max(280, Math.round(box.clientWidth || 600));
    const H = window.matchMedia('(max-width: 600px)').matches ? 180 : 220;
    const m = {l: 62, r: 12, t: 10, b: 24};
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const n = c.series[0].values.length;
    const tops = c.series.map((s) => s.values.slice());
    if (c.stacked) {
      for (let k = 1; k < tops.length; k++) for (let i = 0; i < n; i++) tops[k][i] += tops[k - 1][i];
    }
    const max = niceMax(Math.max(0, ...tops.flat()), c.fmt === fmtBytes);
    const x = (i) => m.l + (n > 1 ? (i / (n - 1)) * iw : 0);
    const y = (v) => m.t + ih - (v / max) * ih;

    const totals = c.series.map((s) => s.values.reduce((a, b) => a + b, 0));
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
      'aria-label': `${c.label}, last 24 hours: ` +
        c.series.map((s, k) => `${s.name} ${c.fmt(totals[k])}`).join(', '),
    });
    root.append(svg('title', {}, c.label));

    const ticks = 4;
    for (let k = 0; k <= ticks; k++) {
      const v = (max * k) / ticks;
      const yy = Math.round(y(v)) + 0.5;
      root.append(svg('line', {class: k ? 'gridline' : 'axis', x1: m.l, x2: W - m.r, y1: yy, y2: yy}));
      root.append(svg('text', {x: m.l - 6, y: yy + 4, 'text-anchor': 'end'}, c.fmt(Math.round(v))));
    }
    // Time labels on the local clock's 6-hour marks (00:00, 06:00, ...).
    const span = c.end - c.first;
    const tx = (t) => m.l + ((t - c.first) / span) * iw;
    const sixH = 6 * 3600;
    let mark = new Date(c.first * 1000);
    mark.setMinutes(0, 0, 0);
    mark.setHours(Math.ceil(mark.getHours() / 6) * 6);
    for (let t = mark.getTime() / 1000; t < c.end; t += sixH) {
      if (t < c.first) continue;
      const xx = Math.round(tx(t)) + 0.5;
      root.append(svg('line', {class: 'gridline', x1: xx, x2: xx, y1: m.t, y2: m.t + ih}));
      const d = new Date(t * 1000);
      const label = `${String(d.getHours()).padStart(2, '0')}:00`;
      root.append(svg('text', {x: xx, y: H - 6, 'text-anchor': 'middle'}, label));
    }
    root.append(svg('text', {x: W - m.r, y: H - 6, 'text-anchor': 'end'}, 'now'));

    for (let k = c.series.length - 1; k >= 0; k--) {
      const top = tops[k];
      const base = c.stacked && k > 0 ? tops[k - 1] : null;
      let line = '';
      for (let i = 0; i < n; i++) line += `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(top[i]).toFixed(1)}`;
      let area = line;
      if (base) {
        for (let i = n - 1; i >= 0; i--) area += `L${x(i).toFixed(1)},${y(base[i]).toFixed(1)}`;
      } else {
        area += `L${x(n - 1).toFixed(1)},${y(0)}L${x(0).toFixed(1)},${y(0)}`;
      }
      const fill = svg('path', {d: area + 'Z'});
      fill.style.fill = c.series[k].color;
      fill.style.fillOpacity = c.stacked ? '0.55' : '0.18';
      const stroke = svg('path', {d: line, fill: 'none', 'stroke-width': '1.5', 'stroke-linejoin': 'round'});
      stroke.style.stroke = c.series[k].color;
      root.append(fill, stroke);
    }
    box.replaceChildren(root);

    legend.replaceChildren(...c.series.map((s, k) => {
      const sw = el('span', {className: 'swatch'});
      sw.style.background = s.color;
      return el('li', {}, sw, s.name, el('span', {className: 'total'}, c.fmt(totals[k])));
    }));
  }

  // ---- Held configs -----------------------------------------------------------------------------

  async function loadConfigs() {
    state.configs = await getJSON('api/v1/configs');
    renderHeld();
  }

  // When the relay expects a held config out, at the WAN rate it measures now.
  function fmtEta(eta, rate) {
    if (eta === null || eta === undefined) return 'unknown';
    if (eta <= 0) return 'any moment now';
    return `in about ${fmtDuration(eta)}${rate > 0 ? ` at ${fmtBytes(rate)}/s` : ''}`;
  }

  const plural = (n, one, many) => `${fmtCount(n)} ${n === 1 ? one : many}`;

  function heldFileRow(f) {
    const total = Number(f.bytes_total) || 0;
    const done = Number(f.bytes_done) || 0;
    // A file on its way with no size yet gets a progress bar without a value: indeterminate.
    const bar = el('progress', {'aria-label': `${f.path}: ${f.state}`});
    if (f.state === 'here') {
      bar.max = 1;
      bar.value = 1;
    } else if (total > 0) {
      bar.max = total;
      bar.value = Math.min(total, done);
    } else if (f.state !== 'fetching') {
      bar.max = 1;
      bar.value = 0;
    }
    let bytes = '';
    if (total > 0) bytes = f.state === 'here' ? fmtBytes(total) : `${fmtBytes(done)} of ${fmtBytes(total)}`;
    else if (done > 0) bytes = fmtBytes(done);
    return el('li', {className: 'held-file', 'data-path': f.path, 'data-state': f.state},
      el('span', {className: 'mono held-file-path'}, f.path),
      el('span', {className: `badge held-${f.state}`}, f.state || ''),
      bar,
      el('span', {className: 'mono held-bytes'}, bytes),
      f.state === 'failed' && f.error ? el('span', {className: 'held-error'}, f.error) : null);
  }

  function heldButton(label, action, className) {
    return el('button', {type: 'button', className, 'data-action': action}, label);
  }

  function heldConfigItem(c, rate) {
    const files = Array.isArray(c.files) ? c.files : [];
    const waiting = files.filter((f) => f.state !== 'here').length;
    const failed = files.some((f) => f.state === 'failed');
    const busy = state.releasing === c.path;
    const actions = el('div', {className: 'held-actions'});
    if (state.heldConfirm === c.path) {
      actions.append(
        el('span', {className: 'held-warning'}, waiting
          ? `Release it? Phones get it at their next read, though ${plural(waiting, 'file', 'files')} it names ${waiting === 1 ? 'is' : 'are'} not cached here: they will ask the origin, through the relay, and fail where it lacks them.`
          : 'Release it? Phones get it at their next read.'),
        heldButton(busy ? 'Releasing…' : 'Release', 'confirm', 'danger'),
        heldButton('Cancel', 'cancel'));
    } else {
      actions.append(heldButton('Release now', 'release'));
    }
    for (const b of actions.querySelectorAll('button')) b.disabled = busy;
    const eta = fmtEta(c.eta_seconds, rate);
    return el('li', {className: 'held-config', 'data-path': c.path},
      el('div', {className: 'held-head'},
        el('h3', {className: 'mono'}, c.path),
        el('span', {className: `badge ${failed ? 'held-failed' : 'held-waiting'}`},
          `${fmtCount(waiting)} of ${plural(files.length, 'file', 'files')} waiting`)),
      el('p', {className: 'held-reason', 'data-failed': failed ? 'true' : null}, c.reason || ''),
      el('dl', {className: 'held-facts'},
        el('dt', {}, 'Held since'), el('dd', {}, timeNode(c.since)),
        el('dt', {}, 'Release'), el('dd', {className: 'held-eta', 'data-known': eta === 'unknown' ? 'false' : 'true',
          title: eta === 'unknown' ? 'a file failed, or a size or the WAN rate is not known yet' : ''}, eta),
        el('dt', {}, 'New version'), el('dd', {className: 'mono', title: c.sha256 || ''},
          `${fmtBytes(c.size)} · ${(c.sha256 || '').slice(0, 12)}`)),
      el('ul', {className: 'held-files', 'aria-label': `files ${c.path} names`}, ...files.map(heldFileRow)),
      actions);
  }

  // Redrawn from state.configs; the button that had the focus keeps it (the list is redrawn every
  // refresh while files arrive), unless `focus` names another ({path, action}).
  function renderHeld(focus) {
    const c = state.configs || {};
    const held = Array.isArray(c.held) ? c.held : [];
    if (state.heldConfirm && !held.some((h) => h.path === state.heldConfirm)) state.heldConfirm = '';
    const list = $('held-list');
    const active = document.activeElement;
    if (!focus && active && list.contains(active) && active.dataset.action) {
      focus = {path: active.closest('.held-config').dataset.path, action: active.dataset.action};
    }
    list.replaceChildren(...held.map((h) => heldConfigItem(h, Number(c.wan_rate) || 0)));
    $('held-count').textContent = held.length ? `(${fmtCount(held.length)})` : '';
    $('panel-held').hidden = held.length === 0;
    if (focus) {
      const item = [...list.children].find((li) => li.dataset.path === focus.path);
      const button = item && item.querySelector(`button[data-action="${focus.action}"]`);
      if (button && !button.disabled) button.focus();
    }
  }

  // A line under the cards that outlives the panel (which hides once nothing is held).
  function showHeldNote(text, level) {
    const note = $('held-note');
    note.textContent = text;
    note.dataset.level = level;
    note.hidden = false;
    clearTimeout(state.heldNoteTimer);
    state.heldNoteTimer = setTimeout(() => { note.hidden = true; }, 15000);
  }

  async function releaseConfig(path) {
    state.releasing = path;
    renderHeld();
    try {
      // The same POST as "Sync now": same-origin, so the relay's check against other sites passes.
      const {body} = await api('api/v1/configs/release', {
        method: 'POST',
        headers: {Accept: 'application/json', 'Content-Type': 'application/json'},
        body: JSON.stringify({path}),
      });
      state.heldConfirm = '';
      if (body) state.configs = body;
      showHeldNote(`Released ${path}: phones get the new version at their next read.`, 'ok');
    } catch (e) {
      state.heldConfirm = '';
      if (e.status === 404) showHeldNote(`${path} is no longer held: it was published meanwhile.`, 'ok');
      else showHeldNote(`Could not release ${path}: ${e.reason || e.message}`, 'bad');
      try { state.configs = await getJSON('api/v1/configs'); } catch (e2) { showError(e2); }
    } finally {
      state.releasing = '';
      renderHeld();
    }
  }

  function onHeldClick(event) {
    const button = event.target.closest('button[data-action]');
    if (!button || button.disabled) return;
    const path = button.closest('.held-config').dataset.path;
    const action = button.dataset.action;
    if (action === 'release') {
      state.heldConfirm = path;
      renderHeld({path, action: 'cancel'});  // Enter twice must not release
    } else if (action === 'cancel') {
      state.heldConfirm = '';
      renderHeld({path, action: 'release'});
    } else if (action === 'confirm') {
      releaseConfig(path);
    }
  }

  // ---- Tables -----------------------------------------------------------------------------------

  function deviceRow(d) {
    const fw = el('td', {}, d.firmware || '—');
    if (d.firmware_mismatch) {
      fw.append(el('span', {
        className: 'badge mismatch', 'data-flag': 'firmware-mismatch',
        title: d.expected_firmware ? `expected ${d.expected_firmware}` : 'not the expected firmware',
      }, 'firmware mismatch'));
    }
    return el('tr', {className: d.firmware_mismatch ? 'mismatch' : '', 'data-mac': d.mac},
      el('td', {className: 'mono', title: macWithColons(d.mac)}, d.mac),
      el('td', {}, d.model || '—'),
      fw,
      el('td', {className: 'mono'}, d.ip || ''),
      el('td', {}, (d.protocol || '').toUpperCase()),
      el('td', {}, timeNode(d.last_seen)),
      el('td', {}, timeNode(d.last_boot)),
      el('td', {}, timeNode(d.first_seen)),
      el('td', {className: 'num'}, fmtCount(d.files_fetched)),
      el('td', {className: 'num'}, fmtCount(d.files_failed)),
      el('td', {className: 'num', title: `${fmtCount(d.upload_bytes)} bytes`}, fmtBytes(d.upload_bytes)),
      el('td', {className: 'mono'}, d.serial || ''));
  }

  function deviceText(d) {
    return [d.mac, macWithColons(d.mac), d.model, d.firmware, d.expected_firmware, d.serial, d.ip,
      d.protocol, d.firmware_mismatch ? 'firmware mismatch' : ''].join(' ');
  }

  function fileRow(f) {
    return el('tr', {'data-path': f.path},
      el('td', {className: 'mono'}, f.path),
      el('td', {className: 'num', title: `${fmtCount(f.size)} bytes`}, fmtBytes(f.size)),
      el('td', {}, el('span', {className: `badge state-${f.state}`}, f.state || '')),
      el('td', {}, f.source || ''),
      el('td', {}, timeNode(f.modified)),
      el('td', {className: 'mono', title: f.sha256 || ''}, (f.sha256 || '').slice(0, 12)));
  }

  const fileText = (f) => [f.path, f.state, f.source, f.sha256, fmtBytes(f.size)].join(' ');

  const tables = {
    devices: {id: 'devices-table', filter: 'device-filter', count: 'device-count', empty: 'devices-empty',
      noun: 'devices', row: deviceRow, text: deviceText, tie: 'mac', rows: [], loaded: false},
    files: {id: 'files-table', filter: 'file-filter', count: 'file-count', empty: 'files-empty',
      noun: 'files', row: fileRow, text: fileText, tie: 'path', sizeKey: 'size', rows: [], loaded: false},
  };

  // Numbers as numbers; MACs and digests as plain strings (a numeric collation would order
  // 0004f2a0a01e before 0004f2a0400c); IPv4 addresses octet by octet; the rest as people read
  // them ("image2" before "image10").
  const ipKey = (ip) => (/^\d+\.\d+\.\d+\.\d+$/.test(ip) ? ip.split('.').map((o) => o.padStart(3, '0')).join('.') : ip);
  function compare(a, b, key) {
    if (typeof a === 'number' || typeof b === 'number' || typeof a === 'boolean') {
      return (Number(a) || 0) - (Number(b) || 0);
    }
    a = String(a ?? '');
    b = String(b ?? '');
    if (key === 'ip') { a = ipKey(a); b = ipKey(b); }
    if (key === 'mac' || key === 'sha256' || key === 'ip') return a < b ? -1 : a > b ? 1 : 0;
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: 'base'});
  }

  function setupTable(t) {
    const table = $(t.id);
    t.key = table.dataset.sortKey;
    t.dir = table.dataset.sortDir;
    for (const th of table.tHead.rows[0].cells) {
      // The header's text moves into a button: focusable, announced as a button, works with Enter.
      const button = el('button', {type: 'button'}, th.textContent);
      th.replaceChildren(button);
      button.addEventListener('click', () => {
        const key = th.dataset.key;
        if (t.key === key) t.dir = t.dir === 'asc' ? 'desc' : 'asc';
        else { t.key = key; t.dir = 'asc'; }
        renderTable(t);
      });
    }
    $(t.filter).addEventListener('input', () => renderTable(t));
  }

  async function loadTable(t, path) {
    const rows = await getJSON(path);
    t.rows = Array.isArray(rows) ? rows : [];
    t.loaded = true;
    renderTable(t);
  }

  function renderTable(t) {
    const table = $(t.id);
    const q = $(t.filter).value.trim().toLowerCase();
    const words = q ? q.split(/\s+/) : [];
    const shown = t.rows.filter((r) => {
      const text = t.text(r).toLowerCase();
      return words.every((w) => text.includes(w));
    });
    const sign = t.dir === 'desc' ? -1 : 1;
    shown.sort((a, b) => sign * compare(a[t.key], b[t.key], t.key) || compare(a[t.tie], b[t.tie], t.tie));
    table.tBodies[0].replaceChildren(...shown.map(t.row));
    table.dataset.sortKey = t.key;
    table.dataset.sortDir = t.dir;
    for (const th of table.tHead.rows[0].cells) {
      if (th.dataset.key === t.key) th.setAttribute('aria-sort', t.dir === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    let count = q ? `${shown.length} of ${t.rows.length} ${t.noun}` : `${t.rows.length} ${t.noun}`;
    if (t.sizeKey) count += `, ${fmtBytes(shown.reduce((a, r) => a + (Number(r[t.sizeKey]) || 0), 0))}`;
    $(t.count).textContent = count;
    $(t.empty).hidden = !(t.loaded && t.rows.length === 0);
  }

  // ---- Tools ------------------------------------------------------------------------------------

  // Copies TEXT; where the Clipboard API is missing (plain http to anything but localhost is not a
  // secure context) the text is selected in SOURCE instead, for Ctrl+C.
  async function copy(text, source, note) {
    let done = false;
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); done = true; } catch (e) { done = false; }
    }
    if (!done) {
      if (source instanceof HTMLTextAreaElement || source instanceof HTMLInputElement) {
        source.focus();
        source.select();
      } else {
        const range = document.createRange();
        range.selectNodeContents(source);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      try { done = document.execCommand('copy'); } catch (e) { done = false; }
    }
    note.textContent = done ? 'Copied' : 'Selected: press Ctrl+C';
    setTimeout(() => { note.textContent = ''; }, 2500);
  }

  function copyButton(text, source, label) {
    const note = el('span', {className: 'copied', 'aria-live': 'polite'});
    const b = el('button', {type: 'button', className: 'copy', 'aria-label': label}, 'Copy');
    b.addEventListener('click', () => copy(text, source, note));
    return [b, note];
  }

  async function loadTools() {
    const tools = await getJSON('api/v1/tools');
    const json = JSON.stringify(tools);
    if (json === state.toolsJSON) return;  // unchanged: keep any selection the user made
    state.toolsJSON = json;

    const urls = Array.isArray(tools.urls) ? tools.urls : [];
    $('dhcp-list').replaceChildren(...(urls.length ? urls.map((u, i) => {
      const value = u.dhcp_option || u.url || '';
      const code = el('code', {id: `dhcp-value-${i}`, 'data-protocol': u.protocol}, value);
      return el('li', {className: 'copy-item'}, el('span', {className: 'proto'}, u.protocol),
        code, ...copyButton(value, code, `Copy the ${u.protocol} provisioning URL`));
    }) : [el('li', {className: 'hint'}, 'No phone listener is configured.')]));

    const box = $('ca-box');
    if (tools.ca_snippet) {
      const area = el('textarea', {id: 'ca-snippet', className: 'snippet', readOnly: true, rows: 10,
        spellcheck: false, value: tools.ca_snippet, 'aria-label': 'device.sec.TLS.customCaCert1 configuration line'});
      const pem = new Blob([tools.ca_certificate || ''], {type: 'application/x-pem-file'});
      const download = el('a', {href: URL.createObjectURL(pem), download: 'siterelay-ca.pem'}, 'Download the PEM');
      box.replaceChildren(area, el('div', {className: 'copy-item'},
        ...copyButton(tools.ca_snippet, area, 'Copy the CA configuration line'), download));
    } else {
      box.replaceChildren(el('p', {className: 'hint'},
        'No CA certificate: the HTTPS listener is off or uses a certificate from a public CA.'));
    }
  }

  // ---- Sync -------------------------------------------------------------------------------------

  function renderSync(s) {
    if (s.running) state.syncError = '';
    const stateNode = $('sync-state');
    let kind;
    let text;
    const files = `${fmtCount(s.files_done)} of ${fmtCount(s.files_total)} files`;
    const bytes = `${fmtBytes(s.bytes_done)} of ${fmtBytes(s.bytes_total)}`;
    if (!s.configured) {
      kind = 'unconfigured';
      text = 'No manifest or prefetch paths configured.';
    } else if (s.running) {
      kind = 'running';
      text = `Running: ${files}, ${bytes}`;
    } else if (!s.started_at) {
      kind = 'never';
      text = 'No pass yet.';
    } else if (s.result === 'ok') {
      kind = 'done';
      text = `Last pass ok, ${fmtAgo(s.finished_at)}: ${files}` +
        (s.files_failed ? `, ${fmtCount(s.files_failed)} failed` : '');
    } else {
      kind = 'failed';
      text = `Last pass failed, ${fmtAgo(s.finished_at)}: ${s.result}`;
    }
    if (state.syncError && !s.running) {
      kind = 'error';
      text = state.syncError;
    }
    stateNode.textContent = text;
    stateNode.dataset.state = kind;
    stateNode.dataset.result = s.result || '';
    stateNode.title = s.finished_at ? `finished ${fmtAbs(s.finished_at)}` : '';

    const setBar = (bar, done, total) => {
      bar.max = Math.max(1, Number(total) || 0);
      bar.value = Math.min(bar.max, Number(done) || 0);
    };
    setBar($('sync-progress'), s.files_done, s.files_total);
    setBar($('sync-bytes-progress'), s.bytes_done, s.bytes_total);
    setBar($('ov-sync-progress'), s.files_done, s.files_total);
    $('sync-files-text').textContent = `${fmtCount(s.files_done)} / ${fmtCount(s.files_total)}`;
    $('sync-bytes-text').textContent = `${fmtBytes(s.bytes_done)} / ${fmtBytes(s.bytes_total)}`;
    $('sync-now').disabled = Boolean(s.running) || state.syncStarting;

    const big = {unconfigured: ['off', null], running: ['running', null], never: ['idle', null],
      done: ['ok', 'ok'], failed: ['failed', 'bad'], error: ['failed', 'bad']}[kind];
    setBig('ov-sync', big[0], big[1]);
    $('ov-sync-detail').textContent = kind === 'running' ? `${files}, ${bytes}`
      : s.configured ? `${s.started_at ? `last ${fmtAgo(s.finished_at)} · ` : ''}generation ${s.generation}`
        : 'nothing to prefetch';
    $('ov-sync').title = kind === 'failed' ? s.result : '';
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Polls /api/v1/sync every second while a pass runs. A pass that was just asked for may not
  // show as running at once, so it keeps asking (a few seconds at most) until the generation
  // moves or the pass is seen running.
  async function pollSync(startedGeneration) {
    if (state.syncPolling) return;
    state.syncPolling = true;
    let seenRunning = false;
    try {
      for (let tries = 0; ; tries++) {
        await sleep(SYNC_POLL_MS);
        const s = await getJSON('api/v1/sync');
        renderSync(s);
        if (s.running) { seenRunning = true; continue; }
        const waiting = startedGeneration !== undefined && !seenRunning &&
          s.generation === startedGeneration && tries < 5;
        if (!waiting) break;
      }
    } catch (e) {
      showError(e);
    } finally {
      state.syncPolling = false;
    }
  }

  async function syncNow() {
    const before = state.status && state.status.sync ? state.status.sync.generation : undefined;
    state.syncError = '';
    state.syncStarting = true;
    $('sync-now').disabled = true;
    const stateNode = $('sync-state');
    stateNode.textContent = 'Starting…';
    stateNode.dataset.state = 'starting';
    try {
      const {body} = await api('api/v1/sync', {method: 'POST'});
      state.syncStarting = false;
      if (body) renderSync(body);
      pollSync(before);
    } catch (e) {
      state.syncStarting = false;
      state.syncError = e.status === 409 || e.status === 503 ? `Cannot sync: ${e.message.replace(/^[^:]*: \d+ /, '')}`
        : `Sync request failed: ${e.message}`;
      stateNode.textContent = state.syncError;
      stateNode.dataset.state = 'error';
      $('sync-now').disabled = false;
    }
  }

  // ---- Navigation -------------------------------------------------------------------------------

  function route() {
    let page = location.hash.replace(/^#/, '');
    if (!PAGES.includes(page)) page = 'overview';
    state.page = page;
    for (const p of PAGES) {
      $(`page-${p}`).hidden = p !== page;
      const link = $(`nav-${p}`);
      if (p === page) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (page === 'overview') drawCharts();
    refresh();
  }

  function init() {
    setupTable(tables.devices);
    setupTable(tables.files);
    $('sync-now').addEventListener('click', syncNow);
    $('held-list').addEventListener('click', onHeldClick);
    $('held-list').addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || !state.heldConfirm) return;
      const path = state.heldConfirm;
      state.heldConfirm = '';
      renderHeld({path, action: 'release'});
    });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) clearTimeout(state.timer);
      else refresh();
    });
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawCharts, 150);
    });
    route();
  }

  init();
})();
