// ringside supervisor page: campaigns, the callback queue, agents and reports, over the REST API.
//
// Signs in with a supervisor or admin token (from `?token=`, which is then taken out of the
// address, or typed in), checked with GET /api/v1/agents/me and kept in sessionStorage (shared
// with the wallboard, which the page opens in a window of its own). Campaign progress and the
// callback queue refresh every few seconds while they are on screen. CSV reports are fetched with
// the token in the Authorization header and saved from memory, so the token never appears in an
// address.
//
// No framework and no build step: the daemon embeds this file as it is. Text from the server is
// put in the page with textContent, never parsed as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'ringside.supervisor.token';
  // Same limit as the wallboard (`console::wallboard::OVERDUE_AFTER_MS`).
  const OVERDUE_AFTER_MS = 30 * 60 * 1000;
  const REFRESH_MS = 3000;
  const CLOSED_STATES = ['done', 'failed', 'cancelled', 'expired'];
  const KIND_LABEL = {
    maintenance_reminder: 'Maintenance reminder',
    return_visit: 'Return visit',
    satisfaction_survey: 'Satisfaction survey',
    care_call: 'Care call',
    custom: 'Other',
  };
  const REPORTS = [
    { key: 'calls', path: 'calls', title: 'Calls per day and hour', grouped: true },
    { key: 'answer-rates', path: 'answer-rates', title: 'Answer and abandon rates, waits', grouped: true },
    { key: 'callbacks', path: 'callbacks', title: 'Time from missed call to callback' },
    { key: 'campaigns', path: 'campaigns', title: 'Campaign outcomes' },
    { key: 'satisfaction-tier', path: 'satisfaction', query: 'by=tier', title: 'Satisfaction by tier' },
    { key: 'satisfaction-agent', path: 'satisfaction', query: 'by=agent', title: 'Satisfaction by agent' },
    { key: 'reminders', path: 'reminders', title: 'Service reminders vs visits booked' },
  ];

  const $ = (id) => document.getElementById(id);
  const state = {
    token: '',
    me: null,
    tab: 'campaigns',
    agents: [],
    campaigns: [],
    editing: null,
    list: { phones: [], ids: [] },
    refreshTimer: null,
  };

  // ------------------------------------------------------------------------------ helpers

  // Builds an element: `attrs` may hold `class`, `text`, `testid`, `data-*`, `on*` handlers and
  // plain attributes; children are elements or strings (always text).
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'testid') el.setAttribute('data-testid', value);
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return el;
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401) {
      signOut('Your token is no longer accepted; sign in again.');
      throw new ApiError(401, 'unauthorized', 'signed out');
    }
    if (!response.ok) {
      const error = (data && data.error) || {};
      throw new ApiError(response.status, error.code || 'error', error.message || `The server answered ${response.status}.`);
    }
    return data;
  }

  // Fetches a report as CSV and saves it under the name the server gives.
  async function downloadCsv(path) {
    const response = await fetch(`/api/v1${path}`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: 'text/csv' },
    });
    if (!response.ok) {
      let message = `The server answered ${response.status}.`;
      try {
        message = (await response.json()).error.message || message;
      } catch {
        // not JSON: keep the status
      }
      throw new Error(message);
    }
    const disposition = response.headers.get('Content-Disposition') || '';
    const match = /filename="([^"]+)"/.exec(disposition);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: match ? match[1] : 'ringside-report.csv' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }

  function notify(text, kind = 'info') {
    $('notice-text').textContent = text;
    $('notice').dataset.kind = kind;
    $('notice').hidden = !text;
  }

  function failed(err) {
    if (err instanceof ApiError && err.status === 401) return;
    notify(err.message || String(err), 'error');
  }

  function ago(ms) {
    let s = Math.round(Math.abs(ms) / 1000);
    if (s < 60) return `${s}s`;
    let m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return `${m}m`;
    const hours = Math.floor(m / 60);
    m %= 60;
    if (hours < 48) return `${hours}h ${m}m`;
    return `${Math.floor(hours / 24)}d`;
  }

  function clock(ms) {
    const d = new Date(ms);
    const sameDay = d.toDateString() === new Date().toDateString();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
    return sameDay ? time : `${d.toLocaleDateString()} ${time}`;
  }

  function agentName(id) {
    const agent = state.agents.find((a) => a.id === id);
    return agent ? agent.name : `#${id}`;
  }

  function dateInput(d) {
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }

  // ------------------------------------------------------------------------------ sign-in

  async function signIn(token) {
    state.token = token.trim();
    if (!state.token) {
      showLogin('Paste a token first.');
      return;
    }
    let me;
    try {
      const response = await fetch('/api/v1/agents/me', { headers: { Authorization: `Bearer ${state.token}` } });
      if (response.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin('That token was not accepted.');
        return;
      }
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      me = await response.json();
    } catch (err) {
      showLogin(`Cannot reach ringside: ${err.message}`);
      return;
    }
    if (me.role !== 'supervisor' && me.role !== 'admin') {
      showLogin('This page needs a supervisor or admin token.');
      return;
    }
    state.me = me;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('login-view').hidden = true;
    $('tabs').hidden = false;
    $('logout').hidden = false;
    $('open-wallboard').hidden = false;
    $('who').textContent = `${me.name} · ${me.role}`;
    for (const option of document.querySelectorAll('[data-admin-only]')) option.disabled = me.role !== 'admin';
    try {
      state.agents = await api('GET', '/agents');
    } catch (err) {
      failed(err);
    }
    selectTab(state.tab);
  }

  function showLogin(message) {
    $('login-view').hidden = false;
    $('tabs').hidden = true;
    $('logout').hidden = true;
    $('open-wallboard').hidden = true;
    $('who').textContent = '';
    for (const view of document.querySelectorAll('.view')) view.hidden = true;
    $('login-message').textContent = message || '';
    $('token').focus();
  }

  function signOut(message) {
    clearInterval(state.refreshTimer);
    state.refreshTimer = null;
    state.token = '';
    state.me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    notify('');
    showLogin(message);
  }

  // ------------------------------------------------------------------------------ tabs

  function selectTab(tab) {
    state.tab = tab;
    for (const button of document.querySelectorAll('[role="tab"]')) {
      button.setAttribute('aria-selected', String(button.dataset.tab === tab));
    }
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== `view-${tab}`;
    clearInterval(state.refreshTimer);
    state.refreshTimer = null;
    const load = { campaigns: loadCampaigns, callbacks: loadCallbacks, agents: loadAgents, reports: showReports }[tab];
    load();
    if (tab === 'campaigns' || tab === 'callbacks') {
      state.refreshTimer = setInterval(() => {
        if (document.hidden) return;
        (tab === 'campaigns' ? loadCampaigns : loadCallbacks)();
      }, REFRESH_MS);
    }
  }

  // ------------------------------------------------------------------------------ campaigns

  async function loadCampaigns() {
    try {
      state.campaigns = await api('GET', '/campaigns');
      renderCampaigns();
    } catch (err) {
      failed(err);
    }
  }

  function figures(campaign) {
    const byState = (campaign.progress && campaign.progress.by_state) || {};
    const count = (states) => states.reduce((n, s) => n + (byState[s] || 0), 0);
    const total = (campaign.progress && campaign.progress.total) || 0;
    return {
      total,
      closed: count(CLOSED_STATES),
      done: count(['done']),
      pending: count(['pending', 'reserved']),
      inCall: count(['dialing', 'connected']),
    };
  }

  function renderCampaigns() {
    const rows = state.campaigns.map((c) => {
      const f = figures(c);
      const share = f.total ? Math.round((f.closed / f.total) * 100) : 0;
      const outcomes = Object.entries((c.progress && c.progress.by_outcome) || {})
        .map(([outcome, n]) => `${outcome.replace(/_/g, ' ')} ${n}`)
        .join(' · ');
      const act = (action, label, kind = 'quiet') =>
        h('button', {
          type: 'button',
          class: kind,
          testid: `campaign-${action}`,
          text: label,
          onclick: () => campaignAction(c, action),
        });
      const actions = [];
      if (c.state === 'draft') actions.push(act('start', 'Start', 'primary'));
      if (c.state === 'running') actions.push(act('pause', 'Pause'));
      if (c.state === 'paused') actions.push(act('resume', 'Resume', 'primary'));
      if (['draft', 'paused'].includes(c.state)) {
        actions.push(h('button', { type: 'button', class: 'quiet', testid: 'campaign-edit', text: 'Edit', onclick: () => openCampaignForm(c) }));
      }
      if (['draft', 'running', 'paused'].includes(c.state)) actions.push(act('stop', 'Stop', 'danger'));
      actions.push(h('button', {
        type: 'button',
        class: 'link',
        testid: 'campaign-report',
        text: 'Report (CSV)',
        onclick: () => downloadCsv(`/reports/campaigns?campaign_id=${c.id}`).catch(failed),
      }));
      return h('tr', { testid: 'campaign-row', 'data-campaign-id': c.id, 'data-state': c.state },
        h('td', {},
          h('div', { class: 'strong', testid: 'campaign-name', text: c.name }),
          h('div', { class: 'muted', text: KIND_LABEL[c.kind] || c.kind })),
        h('td', { text: c.mode }),
        h('td', {}, h('span', { class: `badge state-${c.state}`, testid: 'campaign-state', text: c.state })),
        h('td', { class: 'progress-col' },
          h('div', { class: 'bar' }, h('div', { class: 'bar-fill', style: `width: ${share}%` })),
          h('div', { class: 'muted' },
            h('span', { testid: 'campaign-progress', text: `${f.closed}/${f.total}` }),
            ` closed · ${f.done} reached · ${f.inCall} in call · ${f.pending} waiting`)),
        h('td', { class: 'muted small', text: outcomes || '–' }),
        h('td', { class: 'row-actions' }, actions));
    });
    $('campaign-rows').replaceChildren(...rows);
    $('campaigns-empty').hidden = state.campaigns.length > 0;
  }

  async function campaignAction(campaign, action) {
    if (action === 'stop' && !confirm(`Stop “${campaign.name}”? Calls not yet made are cancelled.`)) return;
    try {
      const updated = await api('POST', `/campaigns/${campaign.id}/${action}`, {});
      const f = figures(updated);
      notify(`“${updated.name}” is ${updated.state}${action === 'start' ? `: ${f.total} customers to call` : ''}.`);
      await loadCampaigns();
    } catch (err) {
      failed(err);
    }
  }

  function toLocalInput(ms) {
    if (typeof ms !== 'number') return '';
    const d = new Date(ms);
    return `${dateInput(d)}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  }

  function openCampaignForm(campaign) {
    const form = $('campaign-form');
    form.reset();
    state.editing = campaign || null;
    state.list = { phones: [], ids: [] };
    $('list-summary').textContent = '';
    $('campaign-error').textContent = '';
    $('campaign-form-title').textContent = campaign ? `Edit “${campaign.name}”` : 'New campaign';
    $('campaign-save').textContent = campaign ? 'Save changes' : 'Create campaign';
    if (campaign) {
      $('campaign-name').value = campaign.name;
      $('campaign-kind').value = campaign.kind;
      $('campaign-mode').value = campaign.mode;
      $('campaign-script').value = campaign.script || '';
      $('window-start').value = campaign.window_start || '';
      $('window-end').value = campaign.window_end || '';
      $('starts-at').value = toLocalInput(campaign.starts_at);
      $('ends-at').value = toLocalInput(campaign.ends_at);
      $('max-concurrent').value = campaign.max_concurrent;
      $('calls-per-minute').value = campaign.calls_per_minute;
      const filter = campaign.filter || {};
      for (const box of document.querySelectorAll('input[name="tier"]')) box.checked = (filter.tiers || []).includes(box.value);
      $('target-tags').value = (filter.tags || []).join(', ');
      $('target-due-days').value = filter.service_due_within_days ?? '';
      const listed = filter.only_listed || (filter.customer_ids || []).length > 0;
      $(listed ? 'target-list' : 'target-filter').checked = true;
      if (listed) $('list-summary').textContent = `${(filter.customer_ids || []).length} customers listed; upload a new list to replace them.`;
    }
    showTargetFields();
    form.hidden = false;
    $('campaign-name').focus();
  }

  function showTargetFields() {
    const byList = $('target-list').checked;
    $('filter-fields').hidden = byList;
    $('list-fields').hidden = !byList;
  }

  // Reads numbers and external ids from an uploaded file or pasted text: a header naming a
  // `phone` or `external_id` column, else the first column of each line (numbers by their look).
  function parseList(text) {
    const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    const split = (line) => line.split(/[,;\t]/).map((c) => c.trim().replace(/^"(.*)"$/, '$1').trim());
    const looksLikePhone = (s) => /^[+＋(]?[\d\s().\-]+$/.test(s) && (s.match(/\d/g) || []).length >= 5;
    const phones = [];
    const ids = [];
    if (!lines.length) return { phones, ids };
    const header = split(lines[0]).map((c) => c.toLowerCase());
    const phoneCol = header.findIndex((c) => /^(phone|mobile|number|tel|telephone|电话|手机|手机号|号码)$/.test(c));
    const idCol = header.findIndex((c) => /^(external_id|客户编号)$/.test(c));
    if (phoneCol >= 0 || idCol >= 0) {
      for (const line of lines.slice(1)) {
        const cells = split(line);
        if (phoneCol >= 0 && cells[phoneCol]) phones.push(cells[phoneCol]);
        else if (idCol >= 0 && cells[idCol]) ids.push(cells[idCol]);
      }
    } else {
      for (const line of lines) {
        const first = split(line)[0];
        if (first) (looksLikePhone(first) ? phones : ids).push(first);
      }
    }
    return { phones, ids };
  }

  function updateListSummary() {
    const { phones, ids } = state.list;
    $('list-summary').textContent = phones.length || ids.length
      ? `${phones.length} numbers and ${ids.length} external ids read.`
      : '';
  }

  async function readList() {
    const file = $('target-file').files[0];
    const pasted = $('target-paste').value;
    const fromFile = file ? parseList(await file.text()) : { phones: [], ids: [] };
    const fromPaste = parseList(pasted);
    state.list = {
      phones: [...fromFile.phones, ...fromPaste.phones],
      ids: [...fromFile.ids, ...fromPaste.ids],
    };
    updateListSummary();
  }

  function localMs(value) {
    if (!value) return null;
    const ms = new Date(value).getTime();
    return Number.isFinite(ms) ? ms : null;
  }

  async function saveCampaign(event) {
    event.preventDefault();
    $('campaign-error').textContent = '';
    const name = $('campaign-name').value.trim();
    if (!name) {
      $('campaign-error').textContent = 'Give the campaign a name.';
      $('campaign-name').focus();
      return;
    }
    let filter;
    if ($('target-list').checked) {
      await readList();
      const { phones, ids } = state.list;
      const previous = state.editing && state.editing.filter;
      if (phones.length || ids.length) {
        filter = { phones, external_ids: ids };
      } else if (previous && (previous.only_listed || (previous.customer_ids || []).length)) {
        filter = { customer_ids: previous.customer_ids || [], only_listed: true };
      } else {
        $('campaign-error').textContent = 'Choose a file or paste numbers for the list.';
        return;
      }
    } else {
      const tiers = [...document.querySelectorAll('input[name="tier"]:checked')].map((b) => b.value);
      const tags = $('target-tags').value.split(',').map((t) => t.trim()).filter(Boolean);
      const days = $('target-due-days').value;
      filter = { tiers, tags };
      if (days !== '') filter.service_due_within_days = Number(days);
    }
    const body = {
      name,
      kind: $('campaign-kind').value,
      mode: $('campaign-mode').value,
      script: $('campaign-script').value.trim() || null,
      filter,
      max_concurrent: Number($('max-concurrent').value || 1),
      calls_per_minute: Number($('calls-per-minute').value || 10),
      window_start: $('window-start').value || null,
      window_end: $('window-end').value || null,
      starts_at: localMs($('starts-at').value),
      ends_at: localMs($('ends-at').value),
    };
    try {
      const saved = state.editing
        ? await api('PATCH', `/campaigns/${state.editing.id}`, body)
        : await api('POST', '/campaigns', body);
      let text = `${state.editing ? 'Saved' : 'Created'} “${saved.name}” as a ${saved.state}; start it when ready.`;
      if (saved.list) {
        text += ` The list matched ${saved.list.matched} of ${saved.list.given} entries (${saved.list.customers} customers).`;
        if (saved.list.unmatched_count) text += ` Not found: ${saved.list.unmatched.slice(0, 5).join(', ')}${saved.list.unmatched_count > 5 ? '…' : ''}.`;
      }
      notify(text);
      $('campaign-form').hidden = true;
      state.editing = null;
      await loadCampaigns();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      $('campaign-error').textContent = err.message;
    }
  }

  // ------------------------------------------------------------------------------ callbacks

  async function loadCallbacks() {
    try {
      const [missed, requested] = await Promise.all([
        api('GET', '/tasks?state=pending&kind=missed_call_callback&limit=500'),
        api('GET', '/tasks?state=pending&kind=requested_callback&limit=500'),
      ]);
      // Someone choosing a new agent in a list keeps it open: refresh next time.
      if (document.activeElement && document.activeElement.closest('#callback-groups')) return;
      renderCallbacks([...missed, ...requested]);
    } catch (err) {
      failed(err);
    }
  }

  function callbackStatus(task, now) {
    if (task.not_before > now) return 'later';
    return task.not_before <= now - OVERDUE_AFTER_MS ? 'overdue' : 'due';
  }

  function renderCallbacks(tasks) {
    const now = Date.now();
    const counts = { due: 0, overdue: 0, later: 0 };
    const groups = new Map();
    for (const task of tasks.sort((a, b) => a.not_before - b.not_before)) {
      const status = callbackStatus(task, now);
      counts[status] += 1;
      if (status === 'overdue') counts.due += 1;
      const key = task.preferred_agent_id ?? 'pool';
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push([task, status]);
    }
    $('cb-due').textContent = String(counts.due);
    $('cb-overdue').textContent = String(counts.overdue);
    $('cb-later').textContent = String(counts.later);
    const takers = state.agents.filter((a) => !a.disabled && a.role !== 'pbx');
    const keys = [...groups.keys()].sort((a, b) => (a === 'pool' ? 1 : b === 'pool' ? -1 : agentName(a).localeCompare(agentName(b))));
    const sections = keys.map((key) => {
      const items = groups.get(key);
      const title = key === 'pool' ? 'Pool (any agent)' : agentName(key);
      return h('section', { class: 'card group', testid: 'callback-group', 'data-agent-id': key },
        h('h3', {}, title, h('span', { class: 'muted', text: ` · ${items.length}` })),
        h('table', { class: 'table' }, h('tbody', {}, items.map(([task, status]) => {
          const select = h('select', { testid: 'reassign-select', 'aria-label': 'Move to' },
            h('option', { value: '', text: 'Pool (any agent)' }),
            takers.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === task.preferred_agent_id })));
          if (task.preferred_agent_id === null || task.preferred_agent_id === undefined) select.value = '';
          const due = task.not_before > now ? `at ${clock(task.not_before)}` : `due ${ago(now - task.not_before)}`;
          const what = task.kind === 'missed_call_callback'
            ? `missed call${task.merged_count ? ` ×${task.merged_count + 1}` : ''}`
            : 'requested';
          return h('tr', { testid: 'callback-row', 'data-task-id': task.id, 'data-status': status },
            h('td', {}, h('span', { class: `badge cb-${status}`, testid: 'callback-status', text: status })),
            h('td', {},
              h('div', { class: 'strong', testid: 'callback-customer', text: task.customer_name || `customer #${task.customer_id}` }),
              h('div', { class: 'muted', text: `${task.customer_tier ? `tier ${task.customer_tier} · ` : ''}${task.number_e164}` })),
            h('td', {}, h('div', { text: what }), h('div', { class: 'muted', text: task.reason || '' })),
            h('td', { text: due }),
            h('td', { class: 'row-actions' }, select,
              h('button', {
                type: 'button',
                class: 'quiet',
                testid: 'reassign-move',
                text: 'Move',
                onclick: () => reassign(task, select.value),
              })));
        }))));
    });
    $('callback-groups').replaceChildren(...sections);
    $('callbacks-empty').hidden = tasks.length > 0;
  }

  async function reassign(task, value) {
    const agent = value === '' ? null : Number(value);
    try {
      await api('PATCH', `/tasks/${task.id}`, { preferred_agent_id: agent });
      notify(`Callback to ${task.customer_name || task.number_e164} moved to ${agent === null ? 'the pool' : agentName(agent)}.`);
      if (document.activeElement) document.activeElement.blur();
      await loadCallbacks();
    } catch (err) {
      failed(err);
    }
  }

  // ------------------------------------------------------------------------------ agents

  async function loadAgents() {
    try {
      state.agents = await api('GET', '/agents');
      renderAgents();
    } catch (err) {
      failed(err);
    }
  }

  function mayManage(agent) {
    return state.me.role === 'admin' || agent.role === 'agent';
  }

  function renderAgents() {
    const rows = state.agents.map((agent) => {
      const manageable = mayManage(agent);
      const extensions = h('input', {
        value: (agent.extensions || []).join(', '),
        testid: 'agent-row-extensions',
        'aria-label': `Extensions of ${agent.name}`,
        disabled: !manageable,
      });
      let role = h('span', { testid: 'agent-row-role', text: agent.role });
      if (state.me.role === 'admin' && agent.id !== state.me.id) {
        role = h('select', { testid: 'agent-row-role', 'aria-label': `Role of ${agent.name}` },
          ['agent', 'supervisor', 'admin', 'pbx'].map((r) => h('option', { value: r, text: r, selected: r === agent.role })));
        role.addEventListener('change', () => updateAgent(agent, { role: role.value }, `${agent.name} is now ${role.value}.`));
      }
      const button = (text, testid, onclick, kind = 'quiet') =>
        h('button', { type: 'button', class: kind, text, testid, disabled: !manageable, onclick });
      return h('tr', { testid: 'agent-row', 'data-agent-id': agent.id, 'data-agent-name': agent.name },
        h('td', { class: 'strong', text: agent.name }),
        h('td', {}, role),
        h('td', { class: 'row-actions' }, extensions,
          button('Save', 'agent-row-save', () => updateAgent(agent, {
            extensions: extensions.value.split(',').map((e) => e.trim()).filter(Boolean),
          }, `Extensions of ${agent.name} saved.`))),
        h('td', {}, h('span', { class: `badge ${agent.disabled ? 'state-stopped' : ''}`, text: agent.disabled ? 'disabled' : agent.status })),
        h('td', { class: 'row-actions' },
          button('New token', 'agent-row-token', () => issueToken(agent)),
          button('Revoke tokens', 'agent-row-revoke', () => revokeTokens(agent), 'danger'),
          button(agent.disabled ? 'Enable' : 'Disable', 'agent-row-disable',
            () => updateAgent(agent, { disabled: !agent.disabled }, `${agent.name} ${agent.disabled ? 'enabled' : 'disabled'}.`))));
    });
    $('agent-rows').replaceChildren(...rows);
  }

  async function updateAgent(agent, change, message) {
    try {
      await api('PATCH', `/agents/${agent.id}`, change);
      notify(message);
    } catch (err) {
      failed(err);
    }
    await loadAgents();
  }

  function showToken(issued) {
    $('token-for').textContent = issued.name;
    $('token-value').textContent = issued.token;
    $('token-box').hidden = false;
  }

  async function issueToken(agent) {
    try {
      showToken(await api('POST', `/agents/${agent.id}/tokens`, {}));
    } catch (err) {
      failed(err);
    }
  }

  async function revokeTokens(agent) {
    if (!confirm(`Revoke every token of ${agent.name}? Their consoles are signed out at their next request.`)) return;
    try {
      await api('DELETE', `/agents/${agent.id}/tokens`);
      notify(`Every token of ${agent.name} is revoked.`);
    } catch (err) {
      failed(err);
    }
  }

  async function addAgent(event) {
    event.preventDefault();
    $('agent-error').textContent = '';
    const body = {
      name: $('agent-name').value.trim(),
      role: $('agent-role').value,
      extensions: $('agent-extensions').value.split(',').map((e) => e.trim()).filter(Boolean),
    };
    const days = $('agent-token-days').value;
    if (days) body.token_days = Number(days);
    try {
      const issued = await api('POST', '/agents', body);
      $('agent-form').reset();
      showToken(issued);
      await loadAgents();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      $('agent-error').textContent = err.message;
    }
  }

  // ------------------------------------------------------------------------------ reports

  function reportQuery(report) {
    const params = new URLSearchParams();
    if ($('report-from').value) params.set('from', $('report-from').value);
    if ($('report-to').value) params.set('to', $('report-to').value);
    if (report.grouped) params.set('by', $('report-by').value);
    if (report.query) for (const [k, v] of new URLSearchParams(report.query)) params.set(k, v);
    return `/reports/${report.path}?${params}`;
  }

  // Until a report comes back the range is left empty, so the server picks its default (the
  // last seven days up to today in the site's time zone, whose today may not be the browser's);
  // the first report fills the range in.
  function showReports() {
    $('report-list').replaceChildren(...REPORTS.map((report) =>
      h('li', { class: 'card report', testid: 'report', 'data-report': report.key },
        h('span', { class: 'strong', text: report.title }),
        h('span', { class: 'row-actions' },
          h('button', { type: 'button', class: 'quiet', text: 'View', testid: `report-view-${report.key}`, onclick: () => viewReport(report) }),
          h('button', {
            type: 'button',
            class: 'primary',
            text: 'Download CSV',
            testid: `report-csv-${report.key}`,
            onclick: () => downloadCsv(reportQuery(report)).catch(failed),
          })))));
  }

  async function viewReport(report) {
    try {
      const data = await api('GET', reportQuery(report));
      if (!$('report-from').value && !$('report-to').value) {
        $('report-from').value = data.from;
        $('report-to').value = data.to;
      }
      const rows = [...data.rows, ...(data.totals ? [data.totals] : [])];
      const columns = rows.length ? Object.keys(rows[0]) : [];
      $('report-title').textContent = `${report.title}: ${data.from} to ${data.to} (${data.timezone})`;
      const cell = (v) => (v === null || v === undefined ? '' : typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '') : String(v));
      $('report-table').replaceChildren(
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { text: c.replace(/_/g, ' ') })))),
        h('tbody', {}, rows.map((row, i) => h('tr', { class: data.totals && i === rows.length - 1 ? 'totals' : '' },
          columns.map((c) => h('td', { text: cell(row[c]) }))))));
      $('report-view').hidden = false;
      if (!rows.length) $('report-title').textContent += ' — nothing in this range';
    } catch (err) {
      failed(err);
    }
  }

  // ------------------------------------------------------------------------------ start

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      signIn($('token').value);
    });
    $('logout').addEventListener('click', () => signOut(''));
    $('notice-close').addEventListener('click', () => notify(''));
    for (const button of document.querySelectorAll('[role="tab"]')) {
      button.addEventListener('click', () => selectTab(button.dataset.tab));
    }
    // The wallboard opens in its own window, which starts with a copy of this tab's session.
    $('open-wallboard').addEventListener('click', () => window.open('/wallboard', 'ringside-wallboard'));
    $('new-campaign').addEventListener('click', () => openCampaignForm(null));
    $('campaign-cancel').addEventListener('click', () => {
      $('campaign-form').hidden = true;
      state.editing = null;
    });
    $('campaign-form').addEventListener('submit', saveCampaign);
    for (const radio of document.querySelectorAll('input[name="target"]')) radio.addEventListener('change', showTargetFields);
    $('target-file').addEventListener('change', () => readList().catch(failed));
    $('target-paste').addEventListener('input', () => readList().catch(failed));
    $('agent-form').addEventListener('submit', addAgent);
    $('token-hide').addEventListener('click', () => {
      $('token-value').textContent = '';
      $('token-box').hidden = true;
    });
    $('token-copy').addEventListener('click', () => {
      navigator.clipboard.writeText($('token-value').textContent).then(
        () => notify('Token copied.'),
        () => notify('Copy it by hand: the browser refused the clipboard.', 'error'),
      );
    });

    const params = new URLSearchParams(location.search);
    const fromUrl = params.get('token');
    if (fromUrl) {
      // Keep the token out of the address bar (and so out of history and screenshots).
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}`);
    }
    const token = fromUrl || sessionStorage.getItem(TOKEN_KEY);
    if (token) signIn(token);
    else showLogin('');
  });
})();
