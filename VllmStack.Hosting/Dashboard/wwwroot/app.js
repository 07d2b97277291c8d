'use strict';
// VllmStack dashboard: plain JavaScript, no build step and no third-party code, talking only to the control API
// of the process that serves it. Pages are <section data-page> elements registered in `pages` below; the hash
// (#/page/argument) selects one, so a new page is a section, a nav link and one entry here.

const RESOURCES_POLL_MS = 1000;
const LOGS_POLL_MS = 500;
const REQUEST_TIMEOUT_MS = 5000;
const MAX_CONSOLE_LINES = 5000;
const MAX_REPLICAS = 64; // the control API's own limit
const PENDING_SCALE_MS = 5000;

// ---- control API -------------------------------------------------------------------------------------------

const path = name => `/api/resources/${encodeURIComponent(name)}`;

async function request(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Error(payload?.error?.message ?? `${method} ${url}: HTTP ${response.status}`);
  }
  return payload;
}

const api = {
  resources: () => request('GET', '/api/resources'),
  logs: (name, after) => request('GET', `${path(name)}/logs?after=${after}`),
  act: (name, action) => request('POST', `${path(name)}/${action}`),
  scale: (name, replicas) => request('PUT', `${path(name)}/replicas`, { replicas }),
};

// ---- small DOM helpers -------------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (/^aria[A-Z]/.test(key)) node.setAttribute(key.replace(/^aria([A-Z])/, (_, c) => `aria-${c.toLowerCase()}`), value);
    else if (key === 'title' || key === 'datetime') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

// Writes only on change, so polling does not disturb selection, focus or screen readers.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setClass(node, prefix, value) {
  for (const cls of [...node.classList]) if (cls.startsWith(prefix)) node.classList.remove(cls);
  node.classList.add(prefix + value);
}

let toastTimer = 0;
function toast(message) {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function setStatus(text, ok) {
  const status = document.getElementById('status');
  setText(status, text);
  status.classList.toggle('disconnected', !ok);
}

// ---- resources page ----------------------------------------------------------------------------------------

const resourceRows = new Map(); // name -> row (DOM nodes + latest snapshot), kept across polls
let latestResources = [];

function badge(field) {
  return el('span', { className: 'badge', dataset: { field } });
}

function actionButton(row, action, label) {
  const button = el('button', { type: 'button', className: `action action-${action}`, textContent: label, ariaLabel: `${label} ${row.name}`, dataset: { action } });
  button.addEventListener('click', () => runAction(button, () => api.act(row.name, action), `${label} ${row.name}`));
  return button;
}

function createRow(name) {
  const row = { name, snapshot: null, pendingDesired: null, pendingUntil: 0, replicaKey: '', urlKey: '' };
  row.cells = {
    name: el('th', { scope: 'row', dataset: { field: 'name' } }, name),
    kind: el('td', { dataset: { field: 'kind' } }),
    state: el('td', { dataset: { field: 'state' } }),
    health: el('td', { dataset: { field: 'health' } }),
    replicas: el('td', { dataset: { field: 'replicas' } }),
    endpoints: el('td', { dataset: { field: 'endpoints' } }),
    runsAs: el('td', { dataset: { field: 'runs-as' } }),
    actions: el('td', { dataset: { field: 'actions' } }),
  };
  row.waitsFor = el('div', { className: 'waits-for', dataset: { field: 'waits-for' } });
  row.cells.name.append(row.waitsFor);
  row.state = badge('state-value');
  row.health = badge('health-value');
  row.cells.state.append(row.state);
  row.cells.health.append(row.health);

  // Replicas: "− running/desired +" above one line per replica.
  row.count = el('span', { className: 'replica-count', dataset: { field: 'replica-count' }, title: 'running / desired' });
  row.minus = el('button', { type: 'button', className: 'scale', textContent: '−', ariaLabel: `Remove one replica of ${name}`, dataset: { action: 'scale-down' } });
  row.plus = el('button', { type: 'button', className: 'scale', textContent: '+', ariaLabel: `Add one replica of ${name}`, dataset: { action: 'scale-up' } });
  row.minus.addEventListener('click', () => scaleBy(row, row.minus, -1));
  row.plus.addEventListener('click', () => scaleBy(row, row.plus, +1));
  row.replicaList = el('ol', { className: 'replica-list', ariaLabel: `Replicas of ${name}` });
  row.cells.replicas.append(el('div', { className: 'replica-control' }, row.minus, row.count, row.plus), row.replicaList);

  row.description = el('span', { className: 'description' });
  row.simulated = el('span', { className: 'badge simulated', dataset: { field: 'simulated' }, textContent: 'simulated', title: 'EngineSim stands in for vLLM: no GPU path on this machine' });
  row.cells.runsAs.append(row.description, ' ', row.simulated);

  row.start = actionButton(row, 'start', 'Start');
  row.stop = actionButton(row, 'stop', 'Stop');
  row.restart = actionButton(row, 'restart', 'Restart');
  row.logs = el('a', { className: 'button-link', href: `#/console/${encodeURIComponent(name)}`, textContent: 'Logs', ariaLabel: `Console logs of ${name}`, dataset: { action: 'logs' } });
  row.cells.actions.append(row.start, row.stop, row.restart, row.logs);

  row.tr = el('tr', { dataset: { resource: name } }, ...Object.values(row.cells));
  return row;
}

function updateRow(row, r) {
  row.snapshot = r;
  // A target is pending until a snapshot shows it, or until it is stale (something else, e.g. the autoscaler, scaled).
  if (row.pendingDesired === r.desiredReplicas || Date.now() > row.pendingUntil) row.pendingDesired = null;
  row.tr.dataset.state = r.state;
  row.tr.dataset.health = r.health;
  setText(row.cells.kind, r.kind);
  setText(row.waitsFor, r.waitsFor.length ? `waits for ${r.waitsFor.join(', ')}` : '');
  setText(row.state, r.state);
  setClass(row.state, 'state-', r.state);
  setText(row.health, r.health);
  setClass(row.health, 'health-', r.health);

  const running = r.replicas.filter(x => x.state === 'Running').length;
  const desired = row.pendingDesired ?? r.desiredReplicas;
  setText(row.count, `${running}/${r.desiredReplicas}`);
  row.minus.disabled = desired <= 0;
  row.plus.disabled = desired >= MAX_REPLICAS;
  renderReplicas(row, r.replicas);
  renderEndpoints(row, r.urls);

  setText(row.description, r.description);
  row.simulated.hidden = !r.simulated;
  row.tr.classList.toggle('simulated', r.simulated);

  const busy = ['Starting', 'Waiting', 'Stopping'].includes(r.state);
  row.start.disabled = r.state === 'Running' || busy;
  row.stop.disabled = r.state === 'Finished' || r.state === 'Stopping';
  row.restart.disabled = r.replicas.length === 0 || busy;
}

function renderReplicas(row, replicas) {
  const key = JSON.stringify(replicas.map(x => [x.index, x.state, x.health, x.processId, x.ports, x.restarts, x.exitCode, x.message]));
  if (key === row.replicaKey) return;
  row.replicaKey = key;
  row.replicaList.replaceChildren(...replicas.map(x => {
    const ports = Object.entries(x.ports ?? {}).map(([name, port]) => name === 'http' ? `:${port}` : `${name}:${port}`).join(' ');
    const item = el('li', { dataset: { replica: String(x.index), state: x.state } },
      el('span', { className: `dot state-${x.state} health-${x.health}`, title: `${x.state}, ${x.health}` }),
      el('span', { className: 'replica-index', textContent: `#${x.index}` }),
      // The usual case stays quiet on screen (the dot says it) but is still read out; anything else is spelled out.
      el('span', { className: x.state === 'Running' && x.health === 'Healthy' ? 'visually-hidden' : 'replica-state', textContent: `${x.state}, ${x.health}` }),
      el('span', { className: 'replica-pid', textContent: x.processId ? `pid ${x.processId}` : 'no process' }),
      el('span', { className: 'replica-port', textContent: ports }),
      el('span', { className: 'replica-restarts', textContent: `${x.restarts} restart${x.restarts === 1 ? '' : 's'}` }));
    if (x.message) item.append(el('span', { className: 'replica-message', textContent: x.message }));
    return item;
  }));
}

function renderEndpoints(row, urls) {
  const key = urls.join(' ');
  if (key === row.urlKey) return;
  row.urlKey = key;
  // Only HTTP endpoints are links: a browser cannot open tcp:// (Redis) or similar.
  row.cells.endpoints.replaceChildren(...urls.map(url => /^https?:/.test(url)
    ? el('a', { href: url, textContent: url.replace(/^https?:\/\//, ''), target: '_blank', rel: 'noopener noreferrer' })
    : el('code', { textContent: url })));
}

// Buttons stay disabled while their request runs; the next poll shows the effect. Returns whether it was accepted.
async function runAction(button, call, what) {
  button.disabled = true;
  let accepted = true;
  try {
    await call();
  } catch (e) {
    accepted = false;
    toast(`${what} failed: ${e.message}`);
  }
  await refreshResources();
  return accepted;
}

async function scaleBy(row, button, delta) {
  if (!row.snapshot) return;
  const target = Math.min(MAX_REPLICAS, Math.max(0, (row.pendingDesired ?? row.snapshot.desiredReplicas) + delta));
  // Remembered until a snapshot shows it, so that quick clicks add up instead of repeating the same target.
  row.pendingDesired = target;
  row.pendingUntil = Date.now() + PENDING_SCALE_MS;
  if (!await runAction(button, () => api.scale(row.name, target), `Scaling ${row.name} to ${target}`)) row.pendingDesired = null;
}

function renderResources(resources) {
  latestResources = resources;
  const tbody = document.querySelector('#resources tbody');
  const names = new Set(resources.map(r => r.name));
  for (const [name, row] of resourceRows) {
    if (!names.has(name)) { row.tr.remove(); resourceRows.delete(name); }
  }
  resources.forEach((r, i) => {
    let row = resourceRows.get(r.name);
    if (!row) { row = createRow(r.name); resourceRows.set(r.name, row); }
    updateRow(row, r);
    if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] ?? null);
  });
  document.getElementById('resources-empty').hidden = resources.length > 0;
  consoleView.updateChoices(resources.map(r => r.name));
}

let refreshing = null;
function refreshResources() {
  // One request at a time: a click and the timer share it.
  refreshing ??= api.resources()
    .then(resources => {
      renderResources(resources);
      const healthy = resources.filter(r => r.health === 'Healthy').length;
      setStatus(`${resources.length} resources · ${healthy} healthy · ${new Date().toLocaleTimeString()}`, true);
    })
    .catch(() => setStatus('disconnected: retrying…', false))
    .finally(() => { refreshing = null; });
  return refreshing;
}

// ---- console page ------------------------------------------------------------------------------------------

const consoleView = {
  resource: null,
  after: 0,
  visible: false,
  polling: false,

  get select() { return document.getElementById('console-resource'); },
  get output() { return document.getElementById('console-lines'); },

  updateChoices(names) {
    const select = this.select;
    const current = [...select.options].map(o => o.value);
    if (current.join('\n') !== names.join('\n')) {
      select.replaceChildren(...names.map(n => el('option', { value: n, textContent: n })));
    }
    if (!this.resource && names.length) this.open(names[0]);
    else if (this.resource) select.value = this.resource;
  },

  open(name) {
    if (name === this.resource) return;
    this.resource = name;
    this.after = 0;
    this.output.replaceChildren();
    this.select.value = name;
    this.output.dataset.resource = name;
    this.updateCount();
    this.poll();
  },

  async poll() {
    if (!this.visible || !this.resource || this.polling) return;
    this.polling = true;
    const name = this.resource;
    try {
      const { lines } = await api.logs(name, this.after);
      // The user may have switched resource while this request ran.
      if (name === this.resource) this.append(lines);
    } catch (e) {
      setStatus(`logs of ${name}: ${e.message}`, false);
    } finally {
      this.polling = false;
    }
  },

  append(lines) {
    if (!lines.length) return;
    const output = this.output;
    const follow = document.getElementById('console-follow').checked;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      fragment.append(renderLine(line));
      this.after = Math.max(this.after, line.sequence);
    }
    output.append(fragment);
    // Bounded like the server's own buffer: the page must stay fast when a process is chatty.
    while (output.childElementCount > MAX_CONSOLE_LINES) output.firstElementChild.remove();
    if (follow) output.scrollTop = output.scrollHeight;
    this.updateCount();
  },

  updateCount() {
    setText(document.getElementById('console-count'), `${this.output.childElementCount} lines`);
  },
};

// Colour codes are for terminals; the dashboard colours by replica and stream instead.
const ANSI_ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

function renderLine(line) {
  const time = new Date(line.time);
  const clock = `${time.toLocaleTimeString([], { hour12: false })}.${String(time.getMilliseconds()).padStart(3, '0')}`;
  const stream = line.isError ? 'stderr' : 'stdout';
  return el('div', { className: `line ${stream} replica-${line.replica % 6}`, dataset: { replica: String(line.replica), stream, sequence: String(line.sequence) } },
    el('time', { datetime: line.time, textContent: clock }),
    el('span', { className: 'replica', textContent: `#${line.replica}`, title: `replica ${line.replica}` }),
    el('span', { className: 'stream', textContent: line.isError ? 'err' : 'out', title: stream }),
    el('span', { className: 'text', textContent: line.text.replace(ANSI_ESCAPES, '') }));
}

// ---- pages and navigation ----------------------------------------------------------------------------------

const pages = {
  resources: {
    title: 'Resources',
    show() {},
    hide() {},
  },
  console: {
    title: 'Console',
    show(argument) {
      consoleView.visible = true;
      if (argument) consoleView.open(argument);
      consoleView.poll();
    },
    hide() { consoleView.visible = false; },
  },
};

let currentPage = null;

function route() {
  const [, id = 'resources', argument] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) ?? [];
  const page = pages[id] ? id : 'resources';
  if (currentPage && currentPage !== page) pages[currentPage].hide();
  for (const section of document.querySelectorAll('[data-page]')) section.hidden = section.dataset.page !== page;
  for (const link of document.querySelectorAll('[data-page-link]')) {
    if (link.dataset.pageLink === page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${pages[page].title} · VllmStack dashboard`;
  currentPage = page;
  pages[page].show(argument ? decodeURIComponent(argument) : '');
}

function wireConsoleToolbar() {
  consoleView.select.addEventListener('change', e => { location.hash = `#/console/${encodeURIComponent(e.target.value)}`; });
  document.getElementById('console-errors-only').addEventListener('change', e => consoleView.output.classList.toggle('errors-only', e.target.checked));
  document.getElementById('console-clear').addEventListener('click', () => { consoleView.output.replaceChildren(); consoleView.updateCount(); });
}

// setTimeout chains rather than setInterval: a slow answer delays the next poll instead of piling requests up.
function every(ms, work) {
  const tick = async () => {
    try { await work(); } finally { setTimeout(tick, ms); }
  };
  tick();
}

wireConsoleToolbar();
window.addEventListener('hashchange', route);
route();
every(RESOURCES_POLL_MS, refreshResources);
every(LOGS_POLL_MS, () => consoleView.poll());
