// ringside wallboard: a screen across the call-centre floor.
//
// Signs in with a supervisor token (from `?token=`, which is then taken out of the address, or
// typed in; kept in sessionStorage, shared with the supervisor page), checks it with
// GET /api/v1/agents/me, then follows GET /ws/wallboard: the server sends a snapshot when the
// socket opens, after every change on the floor and every few seconds. Ages (the oldest missed
// call, calls waiting) count on every second from the server's clock. The connection heals
// itself with backoff while the last figures stay on screen.
//
// No framework and no build step: the daemon embeds this file as it is. Text from the server is
// put in the page with textContent, never parsed as HTML.
'use strict';

(() => {
  const SUBPROTOCOL = 'ringside.v1';
  const TOKEN_KEY = 'ringside.supervisor.token';
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 15000;
  // A bare WebSocket subprotocol must be an HTTP token (RFC 6455 §4.1); other tokens go in the query.
  const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  const $ = (id) => document.getElementById(id);
  const state = {
    token: '',
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    snapshot: null,
    // Server clock minus ours, so ages are right even when this screen's clock is not.
    skewMs: 0,
  };

  function wsUrl(path) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${path}`;
  }

  function setConn(kind, text) {
    $('conn').dataset.conn = kind;
    $('conn-state').textContent = text;
  }

  function showLogin(message) {
    closeSocket();
    $('board').hidden = true;
    $('login-view').hidden = false;
    $('logout').hidden = true;
    $('login-message').textContent = message || '';
    setConn('offline', 'signed out');
    $('token').focus();
  }

  function showBoard() {
    $('login-view').hidden = true;
    $('board').hidden = false;
    $('logout').hidden = false;
  }

  async function signIn(token) {
    state.token = token.trim();
    if (!state.token) {
      showLogin('Paste a token first.');
      return;
    }
    setConn('connecting', 'checking token…');
    let me;
    try {
      const response = await fetch('/api/v1/agents/me', {
        headers: { Authorization: `Bearer ${state.token}` },
      });
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
      showLogin('The wallboard needs a supervisor or admin token.');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, state.token);
    showBoard();
    connect();
  }

  function closeSocket() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close();
    }
  }

  function connect() {
    closeSocket();
    const token = state.token;
    let ws;
    try {
      ws = HTTP_TOKEN.test(token)
        ? new WebSocket(wsUrl('/ws/wallboard'), [SUBPROTOCOL, token])
        : new WebSocket(wsUrl(`/ws/wallboard?token=${encodeURIComponent(token)}`), [SUBPROTOCOL]);
    } catch (err) {
      problem(`Cannot open the connection: ${err.message}`);
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    setConn('connecting', 'connecting…');
    ws.addEventListener('open', () => {
      if (ws !== state.ws) return;
      state.attempt = 0;
      setConn('connected', 'live');
      problem('');
    });
    ws.addEventListener('message', (event) => {
      if (ws !== state.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'wallboard') render(message);
      else if (message.type === 'error') problem(message.message || 'The server reported a problem.');
    });
    ws.addEventListener('close', () => {
      if (ws !== state.ws) return;
      state.ws = null;
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    state.attempt += 1;
    setConn('offline', `reconnecting in ${Math.round(delay / 1000)} s`);
    clearTimeout(state.reconnectTimer);
    // Every few failures, ask again whether the token still works (it may have been revoked).
    state.reconnectTimer = setTimeout(() => {
      if (state.attempt % 4 === 0) signIn(state.token);
      else connect();
    }, delay);
  }

  function problem(text) {
    $('problem').textContent = text;
  }

  // ------------------------------------------------------------------------------ rendering

  function serverNow() {
    return Date.now() + state.skewMs;
  }

  function age(since) {
    if (typeof since !== 'number') return '';
    let s = Math.max(0, Math.floor((serverNow() - since) / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return `${m}m ${String(s).padStart(2, '0')}s`;
    const h = Math.floor(m / 60);
    return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  }

  function setNumber(id, value) {
    $(id).textContent = typeof value === 'number' ? String(value) : '–';
  }

  // A tile is marked for attention (amber) or alarm (red); the style sheet colours it.
  function mark(tile, level) {
    const el = document.querySelector(`[data-tile="${tile}"]`);
    if (el) el.dataset.level = level || '';
  }

  function render(s) {
    state.snapshot = s;
    if (typeof s.at === 'number') state.skewMs = s.at - Date.now();
    const calls = s.calls || {};
    setNumber('ringing', calls.ringing);
    setNumber('waiting', calls.waiting);
    setNumber('talking', calls.talking);
    mark('waiting', calls.waiting > 0 ? 'warn' : '');

    const today = s.today || {};
    const rate = typeof today.answer_rate === 'number' ? `${Math.round(today.answer_rate * 100)}%` : '–';
    $('answer-rate').textContent = rate;
    $('answer-note').textContent = `${today.answered || 0} of ${today.offered || 0} calls`;
    mark('answer-rate', typeof today.answer_rate !== 'number' ? '' : today.answer_rate < 0.6 ? 'alarm' : today.answer_rate < 0.8 ? 'warn' : 'good');

    const missed = s.missed || {};
    setNumber('missed', missed.waiting);
    mark('missed', missed.waiting > 0 ? 'warn' : '');

    const callbacks = s.callbacks || {};
    setNumber('callbacks-due', callbacks.due);
    setNumber('callbacks-overdue', callbacks.overdue);
    mark('callbacks', callbacks.overdue > 0 ? 'alarm' : callbacks.due > 0 ? 'warn' : '');

    const reminders = s.reminders || {};
    setNumber('reminders-due', reminders.due_today);
    setNumber('reminders-done', reminders.done_today);

    renderAgents(s.agents || {});
    renderCalls(calls.unanswered || []);
    renderCampaigns(s.campaigns || []);
    tick();
  }

  function renderAgents(agents) {
    for (const key of ['on_call', 'ready', 'away', 'offline']) {
      const list = Array.isArray(agents[key]) ? agents[key] : [];
      $(`agents-${key}-count`).textContent = String(list.length);
      const ul = $(`agents-${key}`);
      ul.replaceChildren(...list.map((a) => {
        const li = document.createElement('li');
        li.textContent = a.name;
        li.dataset.agentId = String(a.id);
        return li;
      }));
    }
  }

  function renderCalls(lines) {
    const ol = $('call-lines');
    ol.replaceChildren(...lines.map((c) => {
      const li = document.createElement('li');
      li.className = 'call-line';
      li.setAttribute('data-testid', 'call-line');
      li.dataset.callId = c.call_id;
      li.dataset.state = c.state;
      li.dataset.since = String(c.since);
      const number = document.createElement('span');
      number.className = 'call-number';
      number.textContent = c.number || 'withheld';
      const where = document.createElement('span');
      where.className = 'call-where';
      const who = (c.agents || []).join(', ');
      const place = who ? `→ ${who}` : c.queue ? `queue ${c.queue}` : c.state;
      where.textContent = c.direction === 'outbound' ? `outbound ${place}` : place;
      const waited = document.createElement('span');
      waited.className = 'call-age';
      waited.dataset.since = String(c.since);
      li.append(number, where, waited);
      return li;
    }));
    $('calls-empty').hidden = lines.length > 0;
  }

  function renderCampaigns(campaigns) {
    const ul = $('campaigns');
    ul.replaceChildren(...campaigns.map((c) => {
      const li = document.createElement('li');
      li.className = 'campaign';
      li.setAttribute('data-testid', 'campaign');
      li.dataset.campaignId = String(c.id);
      li.dataset.state = c.state;
      const title = document.createElement('div');
      title.className = 'campaign-title';
      const name = document.createElement('span');
      name.textContent = c.name;
      const figures = document.createElement('span');
      figures.className = 'campaign-figures';
      figures.setAttribute('data-testid', 'campaign-figures');
      figures.textContent = `${c.closed}/${c.tasks}${c.state === 'paused' ? ' · paused' : ''}`;
      title.append(name, figures);
      const bar = document.createElement('div');
      bar.className = 'bar-track';
      const fill = document.createElement('div');
      fill.className = 'bar-fill';
      fill.style.width = `${Math.round((c.progress || 0) * 100)}%`;
      bar.append(fill);
      li.append(title, bar);
      return li;
    }));
    $('campaigns-empty').hidden = campaigns.length > 0;
  }

  // Ages and the clock move every second between snapshots.
  function tick() {
    const now = new Date(serverNow());
    $('clock').textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false });
    const s = state.snapshot;
    if (!s) return;
    const calls = s.calls || {};
    // The longest-unanswered call's age goes under "waiting" when callers wait in a queue, else under "ringing".
    const longest = calls.oldest_unanswered_at ? `longest ${age(calls.oldest_unanswered_at)}` : '';
    $('waiting-note').textContent = calls.waiting > 0 ? longest : '';
    $('ringing-note').textContent = calls.waiting > 0 ? '' : longest;
    const missed = s.missed || {};
    $('missed-note').textContent = missed.oldest_at ? `oldest ${age(missed.oldest_at)} ago` : '';
    for (const el of document.querySelectorAll('.call-age')) el.textContent = age(Number(el.dataset.since));
    $('updated').textContent = `updated ${age(s.at)} ago`;
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      signIn($('token').value);
    });
    $('logout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      state.token = '';
      state.snapshot = null;
      showLogin('');
    });
    setInterval(tick, 1000);
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get('token');
    if (fromUrl) {
      // Keep the token out of the address bar (and so out of screenshots and history).
      params.delete('token');
      const rest = params.toString();
      history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}`);
    }
    const token = fromUrl || sessionStorage.getItem(TOKEN_KEY);
    if (token) signIn(token);
    else showLogin('');
  });
})();
