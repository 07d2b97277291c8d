// Polls the control API; a later issue replaces this first version with telemetry pages.
const tbody = document.querySelector('#resources tbody');
let logsFor = null, logsAfter = 0;

async function refresh() {
  try {
    const response = await fetch('/api/resources');
    const resources = await response.json();
    document.getElementById('status').textContent = `${resources.length} resources`;
    tbody.replaceChildren(...resources.map(row));
  } catch (e) {
    document.getElementById('status').textContent = 'disconnected';
  }
}

function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }

function row(r) {
  const tr = document.createElement('tr');
  tr.dataset.resource = r.name;
  const running = r.replicas.filter(x => x.state === 'Running').length;
  tr.append(cell(r.name), cell(r.kind), cell(r.state, 'state-' + r.state), cell(r.health, 'health-' + r.health),
    cell(`${running}/${r.desiredReplicas}`), cell(r.urls.join(' ')), cell(r.description + (r.simulated ? ' ⚙ simulated' : '')));
  const actions = document.createElement('td');
  for (const action of ['start', 'stop', 'restart']) {
    const b = document.createElement('button');
    b.textContent = action;
    b.onclick = () => fetch(`/api/resources/${r.name}/${action}`, { method: 'POST' }).then(refresh);
    actions.append(b);
  }
  const logs = document.createElement('button');
  logs.textContent = 'logs';
  logs.onclick = () => showLogs(r.name);
  actions.append(logs);
  tr.append(actions);
  return tr;
}

function showLogs(name) {
  logsFor = name; logsAfter = 0;
  document.getElementById('logs').hidden = false;
  document.getElementById('logs-name').textContent = name;
  document.getElementById('logs-lines').textContent = '';
}

async function pollLogs() {
  if (!logsFor) return;
  const response = await fetch(`/api/resources/${logsFor}/logs?after=${logsAfter}`);
  const { lines } = await response.json();
  const pre = document.getElementById('logs-lines');
  for (const l of lines) {
    pre.textContent += `${l.time.substring(11, 23)} [${l.replica}] ${l.text}\n`;
    logsAfter = l.sequence;
  }
  if (lines.length) pre.scrollTop = pre.scrollHeight;
}

refresh();
setInterval(refresh, 1000);
setInterval(pollLogs, 500);
