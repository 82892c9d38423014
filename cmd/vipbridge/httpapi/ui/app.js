// app.js: the status page's logic. It follows GET /v1/watch (a snapshot,
// then deltas), keeps every VIP in a Map, and renders one page of the
// filtered, sorted list at a time, so that 10,000 VIPs cost one page of
// DOM. window.vipbridgeUI exposes render timings for the browser test.
'use strict';

(() => {
  const pageSize = 50;
  const maxErrorsShown = 200;

  const st = {
    vips: new Map(), // id → VIP as /v1/watch sends it, plus _text and _problem
    order: [], // ids sorted by VIP then protocol; null when it must be rebuilt
    errors: [],
    changes: [],
    status: null,
    zone: '',
    generation: 0,
    dataplane: false,
    clockSkew: 0, // server clock − browser clock, ms
  };
  const view = { query: '', problemsOnly: false, page: 0, pending: false };
  const stats = { renders: 0, lastRenderMs: 0, snapshotMs: 0, snapshotVIPs: 0, lastEvent: 0, generation: 0, drops: 0 };
  window.vipbridgeUI = stats;

  const $ = (id) => document.getElementById(id);
  const escapes = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => escapes[c]);

  // index prepares v for search and the problems filter, and stores it.
  function index(v) {
    const parts = [v.vip, v.protocol, ...v.addresses, ...v.apps];
    for (const b of v.backends) parts.push(b.addr, b.task_id, b.app_id);
    v._text = parts.join(' ').toLowerCase();
    v._serving = v.backends.some((b) => b.weight > 0);
    v._problem = !v._serving || v.announced === false || (v.dataplane && v.dataplane.status !== 'programmed');
    st.vips.set(v.id, v);
  }

  function byVIP(a, b) {
    const x = st.vips.get(a), y = st.vips.get(b);
    return x.vip < y.vip ? -1 : x.vip > y.vip ? 1 : x.protocol < y.protocol ? -1 : x.protocol > y.protocol ? 1 : 0;
  }

  function onSnapshot(e) {
    const t0 = performance.now();
    const s = JSON.parse(e.data);
    st.vips.clear();
    for (const v of s.vips) index(v);
    st.order = null;
    st.errors = s.errors;
    st.changes = s.changes;
    st.status = s.status;
    st.zone = s.zone;
    st.dataplane = s.dataplane;
    seen(s);
    render();
    document.body.offsetHeight; // include style and layout in the timing
    stats.snapshotMs = performance.now() - t0;
    stats.snapshotVIPs = s.vips.length;
    setConn('live', 'ok');
  }

  function onDelta(e) {
    const d = JSON.parse(e.data);
    for (const v of d.upserts || []) {
      if (!st.vips.has(v.id)) st.order = null;
      index(v);
    }
    for (const id of d.removes || []) {
      if (st.vips.delete(id)) st.order = null;
    }
    if (d.errors) st.errors = d.errors;
    if (d.status) st.status = d.status;
    if (d.changes) st.changes = st.changes.concat(d.changes).slice(-100);
    seen(d);
    schedule();
  }

  function seen(ev) {
    st.generation = ev.generation;
    st.clockSkew = Date.parse(ev.now) - Date.now();
    stats.generation = ev.generation;
    stats.lastEvent = Date.now();
  }

  function setConn(text, cls) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'badge ' + cls;
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text;
    b.hidden = !text;
  }

  // schedule coalesces renders into one per frame (one per tick when the
  // page is hidden and frames do not come).
  function schedule() {
    if (view.pending) return;
    view.pending = true;
    const run = () => { view.pending = false; render(); };
    if (document.hidden) setTimeout(run, 0); else requestAnimationFrame(run);
  }

  function filtered() {
    if (st.order === null) st.order = [...st.vips.keys()].sort(byVIP);
    const q = view.query.trim().toLowerCase().split(/\s+/).filter(Boolean);
    if (q.length === 0 && !view.problemsOnly) return st.order;
    return st.order.filter((id) => {
      const v = st.vips.get(id);
      return (!view.problemsOnly || v._problem) && q.every((w) => v._text.includes(w));
    });
  }

  function render() {
    const t0 = performance.now();
    const ids = filtered();
    const pages = Math.max(1, Math.ceil(ids.length / pageSize));
    view.page = Math.min(view.page, pages - 1);
    const shown = ids.slice(view.page * pageSize, (view.page + 1) * pageSize);
    $('vips').innerHTML = shown.length ? shown.map((id) => vipHTML(st.vips.get(id))).join('')
      : '<p class="empty">' + (st.vips.size ? 'No VIP matches.' : 'No VIPs yet.') + '</p>';
    $('vip-count').textContent = ids.length === st.vips.size ? `(${st.vips.size})` : `(${ids.length} of ${st.vips.size})`;
    $('page').textContent = `page ${view.page + 1} of ${pages}`;
    $('prev').disabled = view.page === 0;
    $('next').disabled = view.page >= pages - 1;
    $('gen').textContent = 'generation ' + st.generation;
    renderSummary();
    renderSources();
    renderErrors();
    renderChanges();
    stats.renders++;
    stats.lastRenderMs = performance.now() - t0;
  }

  function vipHTML(v) {
    const dp = v.dataplane
      ? `<span class="badge ${v.dataplane.status === 'programmed' ? 'ok' : v.dataplane.status === 'error' ? 'bad' : 'warn'}" title="${esc(v.dataplane.reason || 'dataplane')}">${esc(v.dataplane.status)}</span>`
      : '<span class="badge muted" title="--lb none: no kernel dataplane">no dataplane</span>';
    const dns = v.announced === undefined ? '' : v.announced
      ? '<span class="badge ok" title="DNS serves this name and port">in DNS</span>'
      : '<span class="badge warn" title="DNS does not serve this name and port yet">not in DNS</span>';
    const serving = v._serving ? '' : '<span class="badge bad" title="no backend with weight above 0">no backend up</span>';
    const rows = v.backends.map((b) => `<tr class="${b.weight > 0 ? '' : 'drained'}">`
      + `<td data-label="Backend" class="mono addr">${esc(b.addr)}</td>`
      + `<td data-label="Weight" class="weight">${b.weight}</td>`
      + `<td data-label="Health"><span class="badge ${b.weight > 0 ? 'ok' : 'bad'}">${esc(b.health)}</span></td>`
      + `<td data-label="Task" class="mono task">${esc(b.task_id)}</td>`
      + `<td data-label="App" class="mono">${esc(b.app_id)}</td></tr>`).join('');
    return `<article class="vip${v._problem ? ' problem' : ''}" data-id="${esc(v.id)}">`
      + `<div class="vip-head"><span class="proto">${esc(v.protocol)}</span> <span class="vip-name mono">${esc(v.vip)}</span> ${dp} ${dns} ${serving}</div>`
      + `<div class="vip-meta muted"><span class="mono">${esc(v.addresses.join(' · ') || 'no address')}</span> · port ${v.port} · ${esc(v.apps.join(', '))}</div>`
      + (v.backends.length
        ? `<table class="backends"><thead><tr><th>Backend</th><th>Weight</th><th>Health</th><th>Task</th><th>App</th></tr></thead><tbody>${rows}</tbody></table>`
        : '<p class="empty">No backends.</p>')
      + '</article>';
  }

  function renderSummary() {
    let backends = 0, drained = 0, problems = 0;
    for (const v of st.vips.values()) {
      backends += v.backends.length;
      for (const b of v.backends) if (b.weight === 0) drained++;
      if (v._problem) problems++;
    }
    const stale = st.status && st.status.stale;
    const item = (n, label, cls) => `<div class="stat ${cls || ''}"><b>${n}</b><span>${label}</span></div>`;
    $('summary').innerHTML = item(st.vips.size, 'VIPs') + item(backends, 'backends')
      + item(drained, 'drained', drained ? 'warn' : '') + item(problems, 'VIPs with problems', problems ? 'warn' : '')
      + item(st.errors.length, 'label errors', st.errors.length ? 'warn' : '')
      + item(stale ? 'stale' : 'fresh', 'state', stale ? 'bad' : 'ok');
  }

  function ago(t) {
    if (!t) return 'never';
    const s = Math.max(0, Math.round((Date.now() + st.clockSkew - Date.parse(t)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  function renderSources() {
    const srcs = (st.status && st.status.sources) || [];
    $('sources').innerHTML = srcs.length ? srcs.map((s) => `<div class="source">`
      + `<span class="mono">${esc(s.name)}</span> `
      + `<span class="badge ${s.stale ? 'bad' : 'ok'}">${s.stale ? 'stale' : 'fresh'}</span> `
      + `<span class="muted" title="${esc(s.last_sync || '')}">synced ${ago(s.last_sync)}</span>`
      + (s.last_error ? `<div class="err mono">${esc(s.last_error)}</div>` : '')
      + '</div>').join('') : '<p class="empty">No source has reported yet.</p>';
  }

  function renderErrors() {
    $('error-count').textContent = `(${st.errors.length})`;
    const shown = st.errors.slice(0, maxErrorsShown);
    $('errors').innerHTML = shown.map((e) => `<li><span class="mono">${esc(e.app_id)}</span> `
      + `<span class="mono">${esc(e.key)}=${esc(e.value)}</span><div class="reason">${esc(e.reason)}</div></li>`).join('')
      + (st.errors.length > shown.length ? `<li class="muted">… and ${st.errors.length - shown.length} more</li>` : '')
      || '<li class="empty">None.</li>';
  }

  function renderChanges() {
    const items = st.changes.slice().reverse();
    $('changes').innerHTML = items.map((c) => `<li><time class="muted" datetime="${esc(c.at)}">${esc(new Date(c.at).toLocaleTimeString(undefined, { hour12: false }))}</time> `
      + `<span class="badge kind-${esc(c.kind)}">${esc(c.kind)}</span> `
      + (c.vip ? `<span class="mono">${esc(c.protocol)} ${esc(c.vip)}</span> ` : '')
      + `<div class="detail">${esc(c.detail)}</div></li>`).join('') || '<li class="empty">None yet.</li>';
  }

  function connect() {
    const es = new EventSource('../v1/watch');
    es.addEventListener('snapshot', onSnapshot);
    es.addEventListener('delta', onDelta);
    es.addEventListener('dropped', () => {
      stats.drops++;
      banner('This page fell behind the live stream; it reconnects and reloads the state.');
    });
    es.addEventListener('closed', () => banner('The daemon is shutting down.'));
    es.onopen = () => banner('');
    es.onerror = () => {
      setConn('reconnecting', 'bad');
      // EventSource retries a broken stream itself, but gives up on an
      // error status (503 at the client limit): try again later.
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  let searchTimer = 0;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { view.query = $('search').value; view.page = 0; render(); }, 80);
  });
  $('problems').addEventListener('change', () => { view.problemsOnly = $('problems').checked; view.page = 0; render(); });
  $('prev').addEventListener('click', () => { view.page = Math.max(0, view.page - 1); render(); window.scrollTo(0, $('vips-section').offsetTop); });
  $('next').addEventListener('click', () => { view.page++; render(); window.scrollTo(0, $('vips-section').offsetTop); });
  setInterval(renderSources, 1000);
  render();
  connect();
})();
