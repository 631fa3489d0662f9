// ork web UI: plain JavaScript, no build step, no dependencies.
// Pages: / (workflows), /runs, /runs/{id}, /workflows/{name}. Live updates
// come from /api/events (server-sent events); the browser never polls.
'use strict';

const STATUSES = ['pending', 'dispatched', 'running', 'success', 'failed', 'cancelled', 'skipped'];
const RUN_STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'];
const TERMINAL = new Set(['success', 'failed', 'cancelled', 'skipped']);

// ---- small helpers ----

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style') Object.assign(el.style, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) if (kid) el.append(kid);
  return el;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { headers: { 'Accept': 'application/json', ...(opts.body ? { 'Content-Type': 'application/json' } : {}) }, ...opts });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function toast(msg, isErr) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = 'toast' + (isErr ? ' err' : '');
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, isErr ? 7000 : 3500);
}

function fmtDur(ms) {
  if (ms == null || isNaN(ms)) return '–';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 2 : 1)} s`;
  const m = Math.floor(sec / 60), r = Math.round(sec % 60);
  if (m < 60) return `${m}m ${String(r).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}
function dur(a, b) {
  if (!a) return null;
  return (b ? Date.parse(b) : Date.now()) - Date.parse(a);
}
function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function ago(iso) {
  if (!iso) return '';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
const short = (id) => id.slice(0, 8);
const badge = (st) => h('span', { class: 'badge ' + st, text: st });

function progressBar(counts, total, big) {
  const bar = h('div', { class: 'bar' + (big ? ' big' : ''), role: 'img' });
  const parts = [];
  for (const st of STATUSES) {
    const n = (counts && counts[st]) || 0;
    if (!n) continue;
    parts.push(`${n} ${st}`);
    bar.append(h('span', { class: 's-' + st, style: { width: (100 * n / Math.max(total, 1)) + '%' } }));
  }
  bar.setAttribute('aria-label', parts.join(', ') || 'no tasks');
  bar.title = parts.join(', ');
  return bar;
}
function legend(counts) {
  return h('div', { class: 'legend' }, STATUSES.filter((st) => counts[st]).map((st) =>
    h('span', {}, h('i', { class: 's-' + st }), h('b', { text: counts[st].toLocaleString() }), st)));
}
function doneCount(c) { return (c.success || 0) + (c.failed || 0) + (c.cancelled || 0) + (c.skipped || 0); }

// ---- live events ----

// Live keeps one EventSource open for the current page. On every (re)connect
// the server sends "ready": the page then loads its state, and applies the
// events that follow.
class Live {
  constructor(run, handlers) {
    this.handlers = handlers;
    this.loaded = false;
    this.queue = [];
    this.es = new EventSource('/api/events' + (run ? '?run=' + encodeURIComponent(run) : ''));
    const ind = document.getElementById('live');
    this.snapshot = null;
    // With ?run=ID the stream starts with the run and its tasks.
    this.es.addEventListener('snapshot', (ev) => { this.snapshot = JSON.parse(ev.data); });
    this.es.addEventListener('ready', async () => {
      ind.textContent = 'live'; ind.className = 'live on';
      this.loaded = false; this.queue = [];
      const snap = this.snapshot;
      this.snapshot = null;
      try { await handlers.load(snap); } catch (e) { toast(e.message, true); }
      this.loaded = true;
      for (const [name, data] of this.queue) this.dispatch(name, data);
      this.queue = [];
    });
    for (const name of ['run', 'tasks']) {
      this.es.addEventListener(name, (ev) => {
        const data = JSON.parse(ev.data);
        if (this.loaded) this.dispatch(name, data); else this.queue.push([name, data]);
      });
    }
    this.es.onerror = () => { ind.textContent = 'reconnecting…'; ind.className = 'live'; };
  }
  dispatch(name, data) { const f = this.handlers[name]; if (f) f(data); }
  close() { this.es.close(); }
}

// ---- router ----

let current = null;
function navigate(path, replace) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  render();
}
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || a.target) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', render);

function render() {
  if (current && current.dispose) current.dispose();
  const main = document.getElementById('main');
  main.replaceChildren();
  const p = location.pathname;
  let m;
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.remove('active'));
  if ((m = p.match(/^\/runs\/([^/]+)$/))) {
    setNav('runs'); current = runPage(main, decodeURIComponent(m[1]));
  } else if (p === '/runs') {
    setNav('runs'); current = runsPage(main);
  } else if ((m = p.match(/^\/workflows\/([^/]+)$/))) {
    setNav('workflows'); current = workflowsPage(main, decodeURIComponent(m[1]));
  } else {
    setNav('workflows'); current = workflowsPage(main);
  }
}
function setNav(name) {
  const a = document.querySelector(`[data-nav="${name}"]`);
  if (a) a.classList.add('active');
}

// ---- workflows page ----

function workflowsPage(main, only) {
  document.title = only ? `${only} · ork` : 'Workflows · ork';
  const body = h('tbody');
  const table = h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Workflow' }), h('th', { class: 'hide-sm', text: 'Shape' }),
      h('th', { text: 'Last runs' }), h('th', { class: 'hide-sm', text: 'Last run' }), h('th', { text: '' }))), body);
  main.append(h('h1', { text: only ? only : 'Workflows' }),
    h('p', { class: 'sub', text: only ? 'A workflow and its latest runs.' : 'Every workflow, the status of its latest runs, and a button to start one.' }),
    h('div', { class: 'panel flush' }, h('div', { class: 'table-wrap' }, table)));
  let wfs = [];
  const draw = () => {
    body.replaceChildren();
    const list = only ? wfs.filter((w) => w.name === only) : wfs;
    if (!list.length) body.append(h('tr', {}, h('td', { colspan: 5, class: 'empty', text: only ? 'No such workflow.' : 'No workflows yet: create one with `ork create-workflow`.' })));
    for (const w of list) {
      const nodes = w.nodes || [];
      const total = nodes.reduce((a, n) => a + n.task_count, 0);
      const shape = nodes.length > 1 ? `DAG · ${nodes.length} nodes · ${total.toLocaleString()} tasks` : `${w.job_name || (nodes[0] && nodes[0].job_name) || ''} × ${total.toLocaleString()}`;
      const last = w.last_runs || [];
      body.append(h('tr', { dataset: { workflow: w.name } },
        h('td', {}, h('a', { href: '/runs?workflow=' + encodeURIComponent(w.name), text: w.name }),
          w.description ? h('div', { class: 'muted', text: w.description }) : null),
        h('td', { class: 'hide-sm muted', text: shape }),
        h('td', {}, h('div', { class: 'dots' }, last.slice(0, 5).reverse().map((r) =>
          h('a', { href: '/runs/' + r.id, class: 'dot s-' + r.status, title: `${r.status} · ${fmtTime(r.created_at)}`, 'aria-label': `run ${short(r.id)} ${r.status}` })))),
        h('td', { class: 'hide-sm' }, last[0] ? h('span', {}, badge(last[0].status), ' ', h('span', { class: 'muted', text: ago(last[0].created_at) })) : h('span', { class: 'muted', text: 'never run' })),
        h('td', { style: { textAlign: 'right' } }, h('button', { class: 'primary small', dataset: { trigger: w.name }, onclick: () => triggerDialog(w) }, 'Trigger'))));
    }
  };
  const load = async () => { wfs = (await api('/api/workflows')).workflows || []; draw(); };
  let pending = null;
  const live = new Live(null, {
    load,
    run: (r) => {
      const w = wfs.find((x) => x.name === r.workflow_name);
      if (!w) return;
      const i = w.last_runs.findIndex((x) => x.id === r.id);
      if (i >= 0) w.last_runs[i] = r; else w.last_runs.unshift(r);
      w.last_runs = w.last_runs.slice(0, 5);
      if (!pending) pending = requestAnimationFrame(() => { pending = null; draw(); });
    },
  });
  return { dispose: () => live.close() };
}

function triggerDialog(w) {
  const rows = h('div', { class: 'params' });
  const addRow = (k = '', v = '') => {
    const key = h('input', { type: 'text', placeholder: 'name', value: k, 'aria-label': 'parameter name' });
    const val = h('input', { type: 'text', placeholder: 'value (JSON or text)', value: v, 'aria-label': 'parameter value' });
    const row = [key, val, h('button', { class: 'small', type: 'button', 'aria-label': 'remove parameter', onclick: () => row.forEach((e) => e.remove()) }, '✕')];
    rows.append(...row);
  };
  for (const [k, v] of Object.entries(w.params || {})) addRow(k, typeof v === 'string' ? v : JSON.stringify(v));
  const err = h('div', { class: 'error-box', hidden: true });
  const submit = h('button', { class: 'primary', id: 'trigger-submit', type: 'submit' }, 'Trigger run');
  const form = h('form', { method: 'dialog' },
    h('div', { class: 'dlg-head' }, h('h2', { text: `Trigger ${w.name}` })),
    h('div', { class: 'dlg-body' },
      h('p', { class: 'muted', text: 'Parameters for this run; they override the workflow’s. A value that parses as JSON (5, true, {"a":1}) is JSON, else text.' }),
      rows,
      h('div', { class: 'row', style: { marginTop: '10px' } }, h('button', { type: 'button', class: 'small', onclick: () => addRow() }, '+ Add parameter')),
      err),
    h('div', { class: 'dlg-foot' }, h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), submit));
  const dlg = h('dialog', { 'aria-label': `Trigger ${w.name}` }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const params = {};
    const inputs = [...rows.querySelectorAll('input')];
    for (let i = 0; i + 1 < inputs.length; i += 2) {
      const k = inputs[i].value.trim();
      if (!k) continue;
      const raw = inputs[i + 1].value;
      try { params[k] = JSON.parse(raw); } catch { params[k] = raw; }
    }
    submit.disabled = true;
    try {
      const run = await api(`/api/workflows/${encodeURIComponent(w.name)}/trigger`, { method: 'POST', body: JSON.stringify({ params }) });
      dlg.close();
      toast(`Run ${short(run.id)} of ${w.name} triggered`);
      navigate('/runs/' + run.id);
    } catch (e) {
      err.textContent = e.message; err.hidden = false; submit.disabled = false;
    }
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  submit.focus();
}

// ---- runs page ----

function runsPage(main) {
  document.title = 'Runs · ork';
  const q = new URLSearchParams(location.search);
  const wfSel = h('select', { 'aria-label': 'workflow' }, h('option', { value: '', text: 'All workflows' }));
  const stSel = h('select', { 'aria-label': 'status' }, h('option', { value: '', text: 'Any status' }), RUN_STATUSES.map((st) => h('option', { value: st, text: st })));
  const body = h('tbody');
  const newer = h('button', { class: 'small', onclick: () => go({ before: '' }) }, '← Newest');
  const older = h('button', { class: 'small' }, 'Older →');
  main.append(h('h1', { text: 'Runs' }), h('p', { class: 'sub', text: 'Newest first. Updates live.' }),
    h('div', { class: 'panel flush' },
      h('div', { class: 'filters' }, h('label', {}, 'Workflow', wfSel), h('label', {}, 'Status', stSel)),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Status' }), h('th', { text: 'Run' }), h('th', { text: 'Workflow' }),
          h('th', { class: 'hide-sm', text: 'Created' }), h('th', { class: 'hide-sm', text: 'Duration' }), h('th', { text: 'Tasks' }))), body)),
      h('div', { class: 'pager' }, newer, older)));
  const go = (change) => {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(change)) { if (v) p.set(k, v); else p.delete(k); }
    const qs = p.toString();
    navigate('/runs' + (qs ? '?' + qs : ''), true);
  };
  wfSel.addEventListener('change', () => go({ workflow: wfSel.value, before: '' }));
  stSel.addEventListener('change', () => go({ status: stSel.value, before: '' }));
  stSel.value = q.get('status') || '';
  let runs = [];
  const rowOf = new Map();
  const row = (r) => {
    const c = r.task_counts || {};
    return h('tr', { dataset: { run: r.id } },
      h('td', {}, badge(r.status)),
      h('td', {}, h('a', { class: 'mono', href: '/runs/' + r.id, text: short(r.id) })),
      h('td', {}, r.workflow_name),
      h('td', { class: 'hide-sm', title: r.created_at }, fmtTime(r.created_at)),
      h('td', { class: 'hide-sm' }, fmtDur(dur(r.started_at, r.finished_at))),
      h('td', {}, h('div', { class: 'row' }, progressBar(c, r.task_total), h('span', { class: 'count', text: `${doneCount(c).toLocaleString()}/${r.task_total.toLocaleString()}` }))));
  };
  const draw = () => {
    body.replaceChildren(); rowOf.clear();
    if (!runs.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No runs match.' })));
    for (const r of runs) { const tr = row(r); rowOf.set(r.id, tr); body.append(tr); }
  };
  const load = async () => {
    const params = new URLSearchParams();
    for (const k of ['workflow', 'status', 'before']) if (q.get(k)) params.set(k, q.get(k));
    params.set('limit', '50');
    const [page, wfs] = await Promise.all([api('/api/runs?' + params), api('/api/workflows')]);
    runs = page.runs;
    wfSel.replaceChildren(h('option', { value: '', text: 'All workflows' }), ...(wfs.workflows || []).map((w) => h('option', { value: w.name, text: w.name })));
    wfSel.value = q.get('workflow') || '';
    older.disabled = !page.next;
    older.onclick = () => go({ before: page.next });
    newer.disabled = !q.get('before');
    draw();
  };
  const live = new Live(null, {
    load,
    run: (r) => {
      const i = runs.findIndex((x) => x.id === r.id);
      const fits = (!q.get('workflow') || q.get('workflow') === r.workflow_name) && (!q.get('status') || q.get('status') === r.status);
      if (i >= 0) {
        runs[i] = r;
        const tr = row(r); rowOf.get(r.id).replaceWith(tr); rowOf.set(r.id, tr);
      } else if (fits && !q.get('before') && (!runs.length || r.created_at >= runs[0].created_at)) {
        runs.unshift(r); draw();
      }
    },
  });
  const tick = setInterval(() => { for (const r of runs) if (!r.finished_at && r.started_at) { const tr = rowOf.get(r.id); if (tr) tr.children[4].textContent = fmtDur(dur(r.started_at)); } }, 1000);
  return { dispose: () => { live.close(); clearInterval(tick); } };
}

// ---- run page ----

function runPage(main, id) {
  document.title = `Run ${short(id)} · ork`;
  const st = { run: null, nodes: [], tasks: [], byId: new Map(), node: '', status: '', search: '' };
  const head = h('div', { class: 'panel' });
  const dagPanel = h('div', { class: 'panel' }, h('h2', {}, 'Graph', h('span', { class: 'count', id: 'dag-hint', text: 'Click a node to show its tasks.' })));
  const dagWrap = h('div', { class: 'dag-wrap dag' });
  dagPanel.append(dagWrap);
  const ganttPanel = h('div', { class: 'panel flush' }, h('h2', {}, 'Timeline', h('span', { class: 'count', text: 'one bar per attempt, in start order' })));
  const gantt = new Gantt(ganttPanel, (t) => openLog(st.run, t));
  const taskPanel = h('div', { class: 'panel flush' });
  main.append(head, dagPanel, ganttPanel, taskPanel);

  // filters and the virtual table
  const nodeSel = h('select', { 'aria-label': 'node', id: 'task-node' });
  const statusSel = h('select', { 'aria-label': 'task status', id: 'task-status' }, h('option', { value: '', text: 'Any status' }), STATUSES.map((x) => h('option', { value: x, text: x })));
  const search = h('input', { type: 'text', placeholder: 'index or error…', 'aria-label': 'search tasks' });
  const countEl = h('span', { class: 'count' });
  taskPanel.append(h('h2', {}, 'Tasks'), h('div', { class: 'filters' }, h('label', {}, 'Node', nodeSel), h('label', {}, 'Status', statusSel), search, h('span', { class: 'spacer' }), countEl));
  const table = new VTable(taskPanel, (t) => openLog(st.run, t));
  nodeSel.addEventListener('change', () => { st.node = nodeSel.value; refilter(); });
  statusSel.addEventListener('change', () => { st.status = statusSel.value; refilter(); });
  search.addEventListener('input', () => { st.search = search.value.trim().toLowerCase(); refilter(); });

  let dag = null;
  const filtered = () => st.tasks.filter((t) => (!st.node || t.name === st.node) && (!st.status || t.status === st.status) &&
    (!st.search || String(t.index) === st.search || (t.error || '').toLowerCase().includes(st.search)));
  let rows = [];
  function refilter() {
    rows = filtered();
    table.set(rows);
    gantt.set(rows, st.run);
    countEl.textContent = `${rows.length.toLocaleString()} of ${st.tasks.length.toLocaleString()} tasks`;
    if (dag) dag.select(st.node);
  }
  let frame = null;
  const redraw = () => {
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = null;
      drawHead();
      if (dag) dag.update(st.tasks);
      refilter();
    });
  };

  function drawHead() {
    const r = st.run;
    if (!r) return;
    const c = r.task_counts || {};
    const cancelBtn = h('button', { class: 'danger', id: 'cancel-run', disabled: TERMINAL.has(r.status), onclick: () => act('cancel') }, 'Cancel run');
    const retryBtn = h('button', { id: 'retry-run', disabled: !(r.status === 'failed' || r.status === 'cancelled'), onclick: () => act('retry') }, 'Retry');
    head.replaceChildren(
      h('div', { class: 'run-head' },
        h('div', {}, h('h1', {}, h('a', { href: '/runs?workflow=' + encodeURIComponent(r.workflow_name), text: r.workflow_name }), ' ',
          h('span', { id: 'run-status', class: 'badge ' + r.status, dataset: { status: r.status }, text: r.status })),
          h('div', { class: 'mono muted', text: r.id })),
        h('div', { class: 'actions' }, retryBtn, cancelBtn)),
      h('div', { style: { marginTop: '16px' } }, progressBar(c, r.task_total, true), legend(c)),
      h('dl', { class: 'facts' },
        fact('Tasks', `${doneCount(c).toLocaleString()} of ${r.task_total.toLocaleString()} done`),
        fact('Created', fmtTime(r.created_at)), fact('Started', fmtTime(r.started_at)), fact('Finished', fmtTime(r.finished_at)),
        fact('Duration', h('span', { id: 'run-duration', text: fmtDur(dur(r.started_at, r.finished_at)) })),
        fact('Triggered by', r.triggered_by || '–'),
        r.params ? fact('Params', h('span', { class: 'mono', text: JSON.stringify(r.params) })) : null),
      r.error ? h('div', { class: 'error-box', text: r.error }) : '');
  }
  const fact = (k, v) => [h('div', {}, h('dt', { text: k }), h('dd', {}, v))];
  async function act(what) {
    try {
      const res = await api(`/api/runs/${encodeURIComponent(id)}/${what}`, { method: 'POST' });
      toast(what === 'cancel' ? (res.outcome === 'cancelled' ? 'Run cancelled' : res.outcome === 'requested-no-scheduler' ? 'Cancel requested: no scheduler is live to apply it; the next one will' : 'Cancel requested') : `Retrying: ${res.again} task(s) again, ${res.never_ran} never ran`);
    } catch (e) { toast(e.message, true); }
  }

  const load = async (snap) => {
    const [run, tl] = snap ? [snap.run, snap] :
      await Promise.all([api('/api/runs/' + encodeURIComponent(id)), api(`/api/runs/${encodeURIComponent(id)}/tasks`)]);
    st.run = run; st.nodes = run.nodes || [];
    st.tasks = tl.tasks; st.byId = new Map(st.tasks.map((t, i) => [t.id, i]));
    document.title = `${run.workflow_name} ${short(id)} · ork`;
    nodeSel.replaceChildren(h('option', { value: '', text: 'All nodes' }), ...st.nodes.map((n) => h('option', { value: n.name, text: n.name })));
    nodeSel.value = st.node;
    dag = new Dag(dagWrap, st.nodes, (name) => { st.node = st.node === name ? '' : name; nodeSel.value = st.node; refilter(); });
    dag.update(st.tasks);
    drawHead(); refilter();
  };
  const live = new Live(id, {
    load,
    run: (r) => { if (r.id === id) { st.run = { ...r, nodes: st.nodes }; redraw(); } },
    tasks: (ev) => {
      if (ev.run_id !== id) return;
      for (const t of ev.tasks) {
        const i = st.byId.get(t.id);
        if (i == null) { st.byId.set(t.id, st.tasks.length); st.tasks.push(t); } else st.tasks[i] = t;
      }
      redraw();
      logHook(ev.tasks);
    },
  });
  live.es.addEventListener('error', () => {
    // an unknown run: the stream answers 404 and the EventSource gives up
    if (live.es.readyState === EventSource.CLOSED) api('/api/runs/' + encodeURIComponent(id)).catch((e) => {
      head.replaceChildren(h('h1', { text: 'Run not found' }), h('p', { class: 'muted', text: e.message }));
    });
  });
  const tick = setInterval(() => {
    const r = st.run;
    if (r && r.started_at && !r.finished_at) {
      const d = document.getElementById('run-duration');
      if (d) d.textContent = fmtDur(dur(r.started_at));
      gantt.draw();
    }
  }, 1000);
  return { dispose: () => { live.close(); clearInterval(tick); } };
}

// ---- DAG: nodes in layers by depth, edges as SVG curves ----

class Dag {
  constructor(wrap, nodes, onPick) {
    this.wrap = wrap; this.nodes = nodes; this.onPick = onPick; this.els = new Map();
    const W = 184, H = 62, GX = 64, GY = 26, PAD = 16;
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const depth = new Map();
    const d = (n) => {
      if (depth.has(n.name)) return depth.get(n.name);
      depth.set(n.name, 0);
      let v = 0;
      for (const up of n.depends_on || []) if (byName.has(up)) v = Math.max(v, d(byName.get(up)) + 1);
      depth.set(n.name, v);
      return v;
    };
    nodes.forEach(d);
    const layers = [];
    for (const n of nodes) (layers[depth.get(n.name)] ||= []).push(n);
    // Order each layer by the mean position of its upstream nodes.
    const pos = new Map();
    layers.forEach((layer, li) => {
      if (li > 0) {
        const key = (n) => { const ups = (n.depends_on || []).filter((u) => pos.has(u)); return ups.length ? ups.reduce((a, u) => a + pos.get(u), 0) / ups.length : 0; };
        layer.sort((a, b) => key(a) - key(b));
      }
      layer.forEach((n, i) => pos.set(n.name, i));
    });
    const tallest = Math.max(...layers.map((l) => l.length));
    const width = PAD * 2 + layers.length * W + (layers.length - 1) * GX;
    const height = PAD * 2 + tallest * H + (tallest - 1) * GY;
    const xy = new Map();
    layers.forEach((layer, li) => {
      const off = (tallest - layer.length) * (H + GY) / 2;
      layer.forEach((n, i) => xy.set(n.name, { x: PAD + li * (W + GX), y: PAD + off + i * (H + GY) }));
    });
    const svgEl = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'task graph', class: layers.length <= 8 ? 'fit' : null });
    const defs = s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#b5bfcd' })));
    svgEl.append(defs);
    for (const n of nodes) {
      const b = xy.get(n.name);
      for (const up of n.depends_on || []) {
        const a = xy.get(up);
        if (!a) continue;
        const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x - 2, y2 = b.y + H / 2;
        const la = depth.get(up), lb = depth.get(n.name);
        let d;
        if (lb - la <= 1) {
          const mx = (x1 + x2) / 2;
          d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
        } else {
          // A long edge runs in a lane clear of the layers it skips: at its
          // own height if that is free, else just above or below them.
          const boxes = [];
          for (let li = la + 1; li < lb; li++) for (const m of layers[li]) boxes.push(xy.get(m.name));
          const free = (y) => boxes.every((q) => y < q.y - 4 || y > q.y + H + 4);
          const top = Math.min(...boxes.map((q) => q.y)) - GY / 2, bottom = Math.max(...boxes.map((q) => q.y)) + H + GY / 2;
          const lane = free(y1) ? y1 : free(y2) ? y2 : (Math.abs(top - y1) <= Math.abs(bottom - y1) ? top : bottom);
          const xa = x1 + GX / 2, xb = x2 - GX / 2;
          d = `M ${x1} ${y1} C ${xa} ${y1}, ${x1} ${lane}, ${xa} ${lane} L ${xb} ${lane} C ${x2} ${lane}, ${xb} ${y2}, ${x2} ${y2}`;
        }
        svgEl.append(s('path', { class: 'edge', d, 'marker-end': 'url(#arrow)' }));
      }
    }
    for (const n of nodes) {
      const { x, y } = xy.get(n.name);
      const g = s('g', { class: 'node', transform: `translate(${x},${y})`, tabindex: 0, role: 'button', 'data-node': n.name, 'aria-label': `node ${n.name}` });
      const clip = 'clip-' + Math.random().toString(36).slice(2);
      g.append(
        s('clipPath', { id: clip }, s('rect', { width: W, height: H, rx: 8 })),
        s('rect', { class: 'box', width: W, height: H, rx: 8 }),
        s('rect', { class: 'accent', width: 5, height: H, 'clip-path': `url(#${clip})`, fill: 'var(--pending)' }),
        s('text', { x: 16, y: 22, text: n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name }),
        s('text', { class: 'meta', x: 16, y: 40, text: '' }),
        s('g', { class: 'stripes', transform: `translate(16, ${H - 14})` }),
        s('title', { text: n.name }));
      g.addEventListener('click', () => onPick(n.name));
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onPick(n.name); } });
      svgEl.append(g);
      this.els.set(n.name, { g, n, W });
    }
    wrap.replaceChildren(svgEl);
  }
  update(tasks) {
    const counts = new Map();
    for (const t of tasks) {
      let c = counts.get(t.name);
      if (!c) counts.set(t.name, (c = {}));
      c[t.status] = (c[t.status] || 0) + 1;
    }
    for (const [name, { g, n, W }] of this.els) {
      const c = counts.get(name) || {};
      const total = n.task_count;
      const agg = c.failed ? 'failed' : c.running || c.dispatched ? 'running' : c.cancelled && !c.pending ? 'cancelled' :
        (c.success || 0) === total ? 'success' : (c.skipped || 0) === total ? 'skipped' : c.success ? 'running' : 'pending';
      g.querySelector('rect.accent').setAttribute('fill', `var(--${agg})`);
      g.dataset.status = agg;
      const meta = total > 1 ? `${doneCount(c).toLocaleString()}/${total.toLocaleString()} done · ${agg}` : agg;
      g.querySelector('text.meta').textContent = meta;
      const bar = g.querySelector('g.stripes');
      bar.replaceChildren();
      const bw = W - 32;
      let x = 0;
      bar.append(s('rect', { width: bw, height: 6, rx: 3, fill: '#edf0f4' }));
      for (const stt of STATUSES) {
        const k = c[stt] || 0;
        if (!k) continue;
        const w = bw * k / Math.max(total, 1);
        bar.append(s('rect', { x, width: Math.max(w, 1), height: 6, fill: `var(--${stt})` }));
        x += w;
      }
      g.querySelector('title').textContent = `${name}: ` + (STATUSES.filter((x) => c[x]).map((x) => `${c[x]} ${x}`).join(', ') || 'not started');
    }
  }
  select(name) { for (const [n, { g }] of this.els) g.classList.toggle('sel', n === name); }
}

// ---- task table: renders only the rows in view ----

class VTable {
  constructor(parent, onOpen) {
    this.rowH = 34; this.rows = []; this.onOpen = onOpen;
    this.el = h('div', { class: 'vt', role: 'table', 'aria-label': 'tasks', tabindex: -1 });
    this.head = h('div', { class: 'vt-head', role: 'row' }, ['Node', 'Index', 'Status', 'Attempt', 'Started', 'Duration', 'Exit', 'Error'].map((x) => h('div', { role: 'columnheader', text: x })));
    this.body = h('div', { class: 'vt-body' });
    this.el.append(this.head, this.body);
    parent.append(this.el);
    this.el.addEventListener('scroll', () => this.paint());
    this.el.addEventListener('keydown', (e) => {
      const r = e.target.closest('.vrow');
      if (!r) return;
      const i = Number(r.dataset.i);
      if (e.key === 'Enter') { e.preventDefault(); this.onOpen(this.rows[i]); }
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const j = Math.max(0, Math.min(this.rows.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)));
        this.el.scrollTop = Math.min(this.el.scrollTop, j * this.rowH);
        if ((j + 2) * this.rowH > this.el.scrollTop + this.el.clientHeight) this.el.scrollTop = (j + 2) * this.rowH - this.el.clientHeight;
        this.paint();
        const next = this.body.querySelector(`.vrow[data-i="${j}"]`);
        if (next) next.focus();
      }
    });
    new ResizeObserver(() => this.paint()).observe(this.el);
  }
  set(rows) { this.rows = rows; this.body.style.height = rows.length * this.rowH + 'px'; this.paint(); }
  paint() {
    const top = this.el.scrollTop, view = this.el.clientHeight || 560;
    const from = Math.max(0, Math.floor(top / this.rowH) - 5), to = Math.min(this.rows.length, Math.ceil((top + view) / this.rowH) + 5);
    const focused = document.activeElement && document.activeElement.classList.contains('vrow') ? document.activeElement.dataset.i : null;
    const frag = document.createDocumentFragment();
    for (let i = from; i < to; i++) {
      const t = this.rows[i];
      const r = h('div', { class: 'vrow', role: 'row', tabindex: 0, dataset: { i: String(i), task: `${t.name}/${t.index}`, status: t.status }, style: { top: (i * this.rowH) + 'px' },
        onclick: () => this.onOpen(t), 'aria-label': `task ${t.name} ${t.index} ${t.status}, open its log` },
        h('div', { role: 'cell', title: t.name, text: t.name }),
        h('div', { role: 'cell', class: 'mono', text: t.index }),
        h('div', { role: 'cell' }, badge(t.status)),
        h('div', { role: 'cell', text: t.attempt || '–' }),
        h('div', { role: 'cell', class: 'muted', text: fmtTime(t.started_at) }),
        h('div', { role: 'cell', text: t.started_at ? fmtDur(dur(t.started_at, t.finished_at)) : '–' }),
        h('div', { role: 'cell', class: 'mono', text: t.exit_code == null ? '–' : t.exit_code }),
        h('div', { role: 'cell', class: 'err', title: t.error || '', text: t.error || '' }));
      frag.append(r);
    }
    this.body.replaceChildren(frag);
    if (focused != null) { const f = this.body.querySelector(`.vrow[data-i="${focused}"]`); if (f) f.focus({ preventScroll: true }); }
  }
}

// ---- Gantt: one row per task, one bar per attempt; draws only rows in view ----

class Gantt {
  constructor(parent, onOpen) {
    this.rowH = 18; this.label = 150; this.rows = []; this.onOpen = onOpen;
    this.wrap = h('div', { class: 'gantt', role: 'img', 'aria-label': 'timeline of the task attempts' });
    this.spacer = h('div', { class: 'g-spacer' });
    this.canvas = h('canvas', {});
    this.wrap.append(this.canvas, this.spacer);
    parent.append(this.wrap);
    this.wrap.addEventListener('scroll', () => this.draw());
    this.canvas.addEventListener('click', (e) => {
      const r = this.canvas.getBoundingClientRect();
      const i = Math.floor((e.clientY - r.top + this.wrap.scrollTop - 24) / this.rowH);
      if (this.sorted[i]) this.onOpen(this.sorted[i]);
    });
    new ResizeObserver(() => this.draw()).observe(this.wrap);
  }
  set(rows, run) {
    this.run = run;
    const start = (t) => Date.parse((t.attempts && t.attempts.length && t.attempts[0].started_at) || t.started_at || t.dispatched_at || '') || Infinity;
    this.sorted = rows.filter((t) => t.started_at || (t.attempts && t.attempts.length)).sort((a, b) => start(a) - start(b) || a.index - b.index);
    this.wrap.hidden = false;
    this.draw();
  }
  draw() {
    const rows = this.sorted || [];
    const wrap = this.wrap, cv = this.canvas;
    const width = wrap.clientWidth || 800;
    // Many tasks: one thin line each, all in view (the shape of the
    // fan-out); few: a labelled row each, scrolled.
    const compact = rows.length > 150;
    this.rowH = compact ? 340 / rows.length : 18;
    const viewH = compact ? 24 + 340 + 8 : Math.min(420, 24 + rows.length * this.rowH + 4);
    this.spacer.style.height = compact ? viewH + 'px' : (24 + rows.length * this.rowH) + 'px';
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== width * dpr || cv.height !== viewH * dpr) {
      cv.width = width * dpr; cv.height = viewH * dpr; cv.style.width = width + 'px'; cv.style.height = viewH + 'px';
    }
    wrap.style.height = viewH + 'px';
    cv.style.top = wrap.scrollTop + 'px';
    const ctx = cv.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, viewH);
    const css = getComputedStyle(document.documentElement);
    const color = (st) => css.getPropertyValue('--' + st).trim() || '#999';
    ctx.font = '12px system-ui, sans-serif';
    if (!rows.length) {
      ctx.fillStyle = '#5d6778'; ctx.fillText('No task has started yet.', 16, 18);
      return;
    }
    // the time scale: from the first start to the last end (or now)
    let t0 = Infinity, t1 = 0;
    for (const t of rows) {
      for (const a of (t.attempts || [])) { if (a.started_at) t0 = Math.min(t0, Date.parse(a.started_at)); if (a.finished_at) t1 = Math.max(t1, Date.parse(a.finished_at)); }
      if (t.started_at) t0 = Math.min(t0, Date.parse(t.started_at));
      t1 = Math.max(t1, t.finished_at ? Date.parse(t.finished_at) : (t.status === 'running' ? Date.now() : 0));
    }
    if (!(t1 > t0)) t1 = t0 + 1000;
    const x0 = compact ? 70 : this.label, x1 = width - 12, span = t1 - t0;
    const X = (ms) => x0 + (x1 - x0) * (ms - t0) / span;
    // axis
    ctx.fillStyle = '#fafbfc'; ctx.fillRect(0, 0, width, 24);
    ctx.strokeStyle = '#e3e7ee'; ctx.beginPath(); ctx.moveTo(0, 23.5); ctx.lineTo(width, 23.5); ctx.stroke();
    const step = niceStep(span / Math.max(2, Math.floor((x1 - x0) / 110)));
    ctx.fillStyle = '#5d6778';
    for (let v = 0; v <= span; v += step) {
      const x = X(t0 + v);
      ctx.fillText('+' + fmtDur(v), x + 3, 16);
      ctx.strokeStyle = '#eef1f5'; ctx.beginPath(); ctx.moveTo(Math.round(x) + .5, 24); ctx.lineTo(Math.round(x) + .5, viewH); ctx.stroke();
    }
    const top = compact ? 0 : wrap.scrollTop;
    const from = Math.max(0, Math.floor(top / this.rowH)), to = Math.min(rows.length, Math.ceil((top + viewH) / this.rowH));
    if (compact) {
      ctx.fillStyle = '#5d6778';
      ctx.fillText(`${rows.length.toLocaleString()}`, 10, 40);
      ctx.fillText('tasks,', 10, 56);
      ctx.fillText('by start', 10, 72);
      for (let i = 0; i < rows.length; i++) {
        const t = rows[i];
        const y = 24 + i * this.rowH;
        for (const [a, b, stt] of this.bars(t)) {
          const xa = X(Date.parse(a)), xb = b ? X(Date.parse(b)) : X(Date.now());
          ctx.fillStyle = color(stt === 'pending' ? 'failed' : stt);
          ctx.fillRect(xa, y, Math.max(1.5, xb - xa), Math.max(this.rowH, 1));
        }
      }
      return;
    }
    for (let i = from; i < to; i++) {
      const t = rows[i];
      const y = 24 + i * this.rowH - top;
      ctx.fillStyle = '#1c2330';
      ctx.save(); ctx.beginPath(); ctx.rect(0, 24, width, viewH - 24); ctx.clip();
      const lbl = `${t.name}[${t.index}]`;
      ctx.fillText(lbl.length > 22 ? lbl.slice(0, 21) + '…' : lbl, 10, y + 13);
      for (const [a, b, stt] of this.bars(t)) {
        const xa = X(Date.parse(a)), xb = b ? X(Date.parse(b)) : X(Date.now());
        ctx.fillStyle = color(stt === 'pending' ? 'failed' : stt);
        ctx.fillRect(xa, y + 4, Math.max(2, xb - xa), this.rowH - 8);
      }
      ctx.restore();
    }
  }
}
Gantt.prototype.bars = function (t) {
  const bars = (t.attempts || []).filter((a) => a.started_at).map((a) => [a.started_at, a.finished_at, a.status]);
  const cur = !(t.attempts || []).some((a) => a.attempt === t.attempt);
  if (t.started_at && cur) bars.push([t.started_at, t.finished_at, t.status]);
  return bars;
};
function niceStep(raw) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
  for (const m of [1, 2, 5, 10]) if (p * m >= raw) return p * m;
  return p * 10;
}

// ---- the log of a task: one tab per attempt, following a running one ----

let logHook = () => {};
function openLog(run, t) {
  if (!run) return;
  const attempts = Math.max(t.attempt || 0, 1);
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const pre = h('pre', { class: 'log', id: 'log-text', tabindex: 0, 'aria-label': 'log' });
  const status = h('div', { class: 'log-status', 'aria-live': 'polite' });
  const dlg = h('dialog', { 'aria-label': `log of ${t.name} ${t.index}`, id: 'log-dialog' },
    h('div', { class: 'dlg-head' }, h('h2', {}, `${t.name} [${t.index}]`), badge(t.status), h('span', { class: 'spacer' }),
      h('button', { class: 'small', onclick: () => dlg.close(), 'aria-label': 'close' }, 'Close')),
    tabs, status, pre);
  let abort = null;
  let shown = attempts;
  let task = t;
  const show = async (n) => {
    shown = n;
    if (abort) abort.abort();
    abort = new AbortController();
    for (const b of tabs.children) b.setAttribute('aria-selected', String(Number(b.dataset.attempt) === n));
    pre.textContent = '';
    const url = `/api/runs/${encodeURIComponent(run.id)}/tasks/${encodeURIComponent(task.name)}/${task.index}/log?attempt=${n}`;
    const live = n === task.attempt && !TERMINAL.has(task.status) && task.status !== 'pending';
    status.textContent = live ? 'following the running attempt…' : `attempt ${n}`;
    try {
      const res = await fetch(url + (live ? '&follow=1' : ''), { signal: abort.signal });
      if (!res.ok) { const e = await res.json().catch(() => ({})); throw new Error(e.error || res.statusText); }
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(dec.decode(value, { stream: true }));
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      if (!pre.textContent) pre.textContent = task.attempt ? '(no output)' : '(not started yet)';
      status.textContent = `attempt ${n} · ${res.headers.get('X-Ork-Task-Status') || ''}` + (live ? ' · ended' : '');
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = e.message;
    }
  };
  const drawTabs = () => {
    tabs.replaceChildren();
    for (let n = 1; n <= Math.max(task.attempt || 0, 1); n++) {
      const b = h('button', { role: 'tab', dataset: { attempt: n }, 'aria-selected': String(n === shown), onclick: () => show(n) }, `Attempt ${n}`);
      tabs.append(b);
    }
  };
  drawTabs();
  logHook = (changed) => {
    const x = changed.find((c) => c.id === task.id);
    if (!x) return;
    const newAttempt = x.attempt > task.attempt;
    task = x;
    drawTabs();
    dlg.querySelector('.dlg-head .badge').replaceWith(badge(x.status));
    if (newAttempt) show(x.attempt);
  };
  dlg.addEventListener('close', () => { if (abort) abort.abort(); logHook = () => {}; dlg.remove(); });
  document.body.append(dlg);
  dlg.showModal();
  show(attempts);
}

render();
