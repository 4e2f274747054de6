// ringside agent console: the page a call-centre agent keeps open all day.
//
// It holds one WebSocket to the daemon (protocol `ringside.v1`), shows a card for every call
// ringing at the agent's phones (screen pops), lets the agent record a disposition, pick another
// customer on a shared number, switch between ready and away, and work the outbound calls the
// daemon offers. The connection heals itself with backoff while the cards stay on screen; the
// server replays pops the page has not acknowledged, so pops are deduplicated by call and seq.
//
// No framework and no build step: the daemon embeds this file as it is. All text that comes from
// the server is put in the page with textContent, never parsed as HTML.
'use strict';

(() => {
  const SUBPROTOCOL = 'ringside.v1';
  const TOKEN_STORAGE_KEY = 'ringside.console.token';
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const WITHDRAWN_CARD_LINGER_MS = 4000;
  const SAVED_CARD_LINGER_MS = 6000;
  const SAVE_TIMEOUT_MS = 10000;
  const ESCAPE_CONFIRM_MS = 4000;
  const HISTORY_SHOWN = 5;
  const SEEN_POPS_KEPT = 500;
  // A bare WebSocket subprotocol must be an HTTP token (RFC 6455 §4.1); other tokens go in the query.
  const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  // Close codes a server may use to say "this token is not welcome" after the upgrade.
  const REFUSED_CLOSE_CODES = new Set([4001, 4003, 4401, 4403]);

  const TASK_OUTCOMES = [
    ['answered_done', 'Answered, done'],
    ['callback_requested', 'Callback requested'],
    ['no_answer', 'No answer'],
    ['busy', 'Busy'],
    ['wrong_number', 'Wrong number'],
    ['refused', 'Refused'],
    ['voicemail', 'Voicemail'],
  ];

  const MATCH_TEXT = {
    exact: ['Matched on the full number', ''],
    national: ['Matched on the national number', ''],
    trailing_digits: ['Matched on the last digits only: confirm who is calling', 'warn'],
    remembered: ['Customer chosen earlier for this number', ''],
    none: ['No customer on file for this number', ''],
    withheld: ['Caller withheld the number', 'warn'],
  };

  // The words a card's state shows; browser tests read them literally.
  const PHASE_LABEL = {
    ringing: 'ringing',
    on_call: 'on call',
    elsewhere: 'answered elsewhere',
    ended: 'ended',
    withdrawn: 'ended',
  };

  const state = {
    token: '',
    wantConnected: false,
    ws: null,
    tokenWorkedBefore: false,
    refusalsInARow: 0,
    attempt: 0,
    reconnectTimer: null,
    reconnectAt: 0,
    agent: null,
    dispositions: [],
    clockOffsetMs: 0,
    status: null,
    statusPending: null,
    outbox: [],
    cards: new Map(),
    tasks: new Map(),
    seenPops: new Set(),
    lastSeqByCall: new Map(),
    escapeArmed: null,
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    loginView: $('login-view'),
    loginForm: $('login-form'),
    tokenInput: $('token-input'),
    tokenReveal: $('token-reveal'),
    connectButton: $('connect-button'),
    loginMessage: $('login-message'),
    workspace: $('workspace'),
    agentBox: $('agent-box'),
    agentName: $('agent-name'),
    agentMeta: $('agent-meta'),
    statusToggle: $('status-toggle'),
    statusText: $('status-text'),
    conn: $('conn'),
    connState: $('conn-state'),
    retryNow: $('retry-now'),
    logout: $('logout'),
    statusLine: $('status-line'),
    statusLineText: $('status-line-text'),
    statusLineClose: $('status-line-close'),
    callList: $('call-list'),
    callsEmpty: $('calls-empty'),
    callsEmptyText: $('calls-empty-text'),
    callsCount: $('calls-count'),
    taskList: $('task-list'),
    tasksEmpty: $('tasks-empty'),
    tasksCount: $('tasks-count'),
    announcer: $('announcer'),
    politeAnnouncer: $('announcer-polite'),
    shortcuts: $('shortcuts'),
    newCallPill: $('new-call-pill'),
    topbar: document.querySelector('.topbar'),
  };

  let idCounter = 0;
  const uniqueId = (prefix) => `${prefix}-${++idCounter}`;

  // ---------------------------------------------------------------- DOM helpers

  // Builds an element. Attributes set to null/undefined/false are skipped; `text` sets
  // textContent; `on*` functions become listeners; everything else is an attribute.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'text') el.textContent = String(value);
        else if (key === 'class') el.className = value;
        else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    appendChildren(el, children);
    return el;
  }

  function appendChildren(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false || child === '') continue;
      el.append(child instanceof Node ? child : String(child));
    }
  }

  function isText(value) {
    return typeof value === 'string' && value.trim() !== '';
  }

  function words(code) {
    return String(code ?? '').replace(/[_-]+/g, ' ').trim();
  }

  // New calls interrupt (assertive); everything else waits its turn (polite).
  function announce(text, { polite = false } = {}) {
    const region = polite ? ui.politeAnnouncer : ui.announcer;
    // Clearing first makes screen readers repeat an identical announcement.
    region.textContent = '';
    window.setTimeout(() => { region.textContent = text; }, 30);
  }

  // ---------------------------------------------------------------- time

  const relativeFormat = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  function parseTime(value) {
    if (!isText(value) && typeof value !== 'number') return null;
    const ms = typeof value === 'number' ? value : Date.parse(value);
    return Number.isFinite(ms) ? ms : null;
  }

  function relativeTime(ms) {
    const seconds = Math.round((ms - serverNow()) / 1000);
    const abs = Math.abs(seconds);
    if (abs < 45) return 'just now';
    const steps = [[60, 'second', 1], [3600, 'minute', 60], [86400, 'hour', 3600], [86400 * 30, 'day', 86400],
      [86400 * 365, 'month', 86400 * 30], [Infinity, 'year', 86400 * 365]];
    for (const [limit, unit, size] of steps) {
      if (abs < limit) return relativeFormat.format(Math.round(seconds / size), unit);
    }
    return '';
  }

  function timeElement(value, className) {
    const ms = parseTime(value);
    if (ms === null) return null;
    return h('time', { class: className, datetime: new Date(ms).toISOString(), title: dateTimeFormat.format(ms),
      text: relativeTime(ms) });
  }

  function formatDuration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const seconds = total % 60;
    const two = (n) => String(n).padStart(2, '0');
    return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
  }

  function localTimeIn(timeZone) {
    if (!isText(timeZone)) return null;
    try {
      return new Intl.DateTimeFormat(undefined, { timeZone, hour: '2-digit', minute: '2-digit' }).format(serverNow());
    } catch {
      return null;
    }
  }

  function formatBirthday(value) {
    if (!isText(value)) return null;
    const match = /^(?:\d{4}|--)-?(\d{2})-(\d{2})/.exec(value);
    if (!match) return value;
    const date = new Date(Date.UTC(2000, Number(match[1]) - 1, Number(match[2])));
    return new Intl.DateTimeFormat('en', { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(date);
  }

  // ---------------------------------------------------------------- phone numbers

  // Groups the digits the way people say them; anything unrecognised is shown as received.
  function formatNumber(party) {
    if (!party) return '';
    const e164 = isText(party.e164) ? party.e164 : '';
    const patterns = [
      [/^\+86(1\d{2})(\d{4})(\d{4})$/, '+86 $1 $2 $3'],
      [/^\+86(10|2\d)(\d{4})(\d{4})$/, '+86 $1 $2 $3'],
      [/^\+86([3-9]\d{2})(\d{3,4})(\d{4})$/, '+86 $1 $2 $3'],
      [/^\+1(\d{3})(\d{3})(\d{4})$/, '+1 $1 $2 $3'],
      [/^\+44(\d{4})(\d{6})$/, '+44 $1 $2'],
    ];
    for (const [pattern, replacement] of patterns) {
      if (pattern.test(e164)) return e164.replace(pattern, replacement);
    }
    return e164 || (isText(party.raw) ? party.raw : '');
  }

  // ---------------------------------------------------------------- connection

  function wsUrl(path) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${path}`;
  }

  function setConnection(kind, text) {
    // The countdown changes every second; only a change of kind is worth announcing.
    if (ui.conn.dataset.conn !== kind && kind !== 'connecting') announce(`Connection ${text}.`, { polite: true });
    ui.conn.dataset.conn = kind;
    document.body.dataset.conn = kind;
    ui.connState.textContent = text;
    ui.retryNow.hidden = kind !== 'reconnecting';
  }

  function connect() {
    clearReconnectTimer();
    if (state.ws) {
      // A new attempt supersedes one still under way; its events are ignored from now on.
      const superseded = state.ws;
      state.ws = null;
      superseded.close();
    }
    if (!state.wantConnected || !state.token) return;
    const token = state.token;
    let ws;
    try {
      ws = HTTP_TOKEN.test(token)
        ? new WebSocket(wsUrl('/ws'), [SUBPROTOCOL, token])
        : new WebSocket(wsUrl(`/ws?token=${encodeURIComponent(token)}`), [SUBPROTOCOL]);
    } catch (err) {
      showStatusLine(`Cannot open the connection: ${err.message}`, 'error');
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    let opened = false;
    setConnection('connecting', 'connecting…');

    ws.addEventListener('open', () => {
      if (ws !== state.ws) return;
      opened = true;
      state.tokenWorkedBefore = true;
      state.refusalsInARow = 0;
      state.attempt = 0;
      setConnection('connected', 'connected');
      rememberToken(token);
      showWorkspace();
      flushOutbox();
    });
    ws.addEventListener('message', (event) => {
      if (ws !== state.ws) return;
      handleMessage(event.data);
    });
    ws.addEventListener('close', (event) => {
      if (ws !== state.ws) return;
      state.ws = null;
      onConnectionClosed(event, opened);
    });
  }

  async function onConnectionClosed(event, opened) {
    if (!state.wantConnected) return;
    if (REFUSED_CLOSE_CODES.has(event.code)) {
      tokenRefused();
      return;
    }
    if (!opened) {
      // A browser hides the HTTP status of a failed upgrade. If the daemon itself answers, the
      // upgrade was refused (401 for a bad token), which retrying will not fix.
      setConnection('connecting', 'checking…');
      const serverUp = await serverAnswers();
      if (!state.wantConnected || state.ws) return;
      if (serverUp) {
        state.refusalsInARow += 1;
        // During a daemon restart the upgrade may hit the old process while /healthz already
        // answers from the new one; a token that worked before gets a second chance.
        if (!state.tokenWorkedBefore || state.refusalsInARow >= 2) {
          tokenRefused();
          return;
        }
      }
    }
    scheduleReconnect();
  }

  async function serverAnswers() {
    const controller = new AbortController();
    const timer = window.setTimeout(() => controller.abort(), 3000);
    try {
      const response = await fetch('/healthz', { cache: 'no-store', signal: controller.signal });
      // 5xx usually comes from a proxy in front of a daemon that is down, or a daemon without its database.
      return response.status < 500;
    } catch {
      return false;
    } finally {
      window.clearTimeout(timer);
    }
  }

  function scheduleReconnect() {
    clearReconnectTimer();
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    const jittered = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + Math.random() * 0.4)));
    state.attempt += 1;
    state.reconnectAt = Date.now() + jittered;
    state.reconnectTimer = window.setTimeout(connect, jittered);
    renderReconnectCountdown();
    if (ui.workspace.hidden) {
      // Never got in: let the agent edit the token while the page keeps trying.
      ui.connectButton.disabled = false;
      ui.loginMessage.textContent = 'Cannot reach the server. Trying again automatically.';
    }
  }

  function renderReconnectCountdown() {
    if (!state.reconnectTimer) return;
    const seconds = Math.max(1, Math.ceil((state.reconnectAt - Date.now()) / 1000));
    setConnection('reconnecting', `reconnecting in ${seconds} s`);
  }

  function clearReconnectTimer() {
    if (state.reconnectTimer) window.clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
  }

  function tokenRefused() {
    state.wantConnected = false;
    clearReconnectTimer();
    forgetToken();
    setConnection('refused', 'token refused');
    clearWorkspace();
    showLogin('The server refused this token. Check it, or ask your supervisor for a new one.');
  }

  function send(message) {
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return true;
    }
    // Acks are not queued: the server replays unacknowledged pops after a reconnect.
    if (message.type === 'ack') return false;
    if (message.type === 'status') state.outbox = state.outbox.filter((queued) => queued.type !== 'status');
    state.outbox.push(message);
    return false;
  }

  function flushOutbox() {
    const queued = state.outbox;
    state.outbox = [];
    for (const message of queued) send(message);
  }

  // ---------------------------------------------------------------- login / logout

  function readInitialToken() {
    const params = new URLSearchParams(location.search);
    const fromUrl = params.get('token');
    if (fromUrl !== null) {
      // Keep the token out of the address bar, history and screenshots.
      params.delete('token');
      const query = params.toString();
      history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
      return { token: fromUrl, remembered: false };
    }
    let stored = null;
    try {
      stored = localStorage.getItem(TOKEN_STORAGE_KEY);
    } catch {
      stored = null;
    }
    return { token: stored || '', remembered: Boolean(stored) };
  }

  function rememberToken(token) {
    try {
      localStorage.setItem(TOKEN_STORAGE_KEY, token);
    } catch {
      // Private windows may refuse storage; the session still works.
    }
  }

  function forgetToken() {
    try {
      localStorage.removeItem(TOKEN_STORAGE_KEY);
    } catch {
      // Nothing stored, nothing to forget.
    }
  }

  function showLogin(message) {
    ui.loginView.hidden = false;
    ui.shortcuts.hidden = true;
    ui.workspace.hidden = true;
    ui.agentBox.hidden = true;
    ui.statusToggle.hidden = true;
    ui.logout.hidden = true;
    ui.connectButton.disabled = false;
    ui.loginMessage.textContent = message || '';
    ui.tokenInput.focus();
    if (message) ui.tokenInput.select();
  }

  function showWorkspace() {
    ui.loginView.hidden = true;
    ui.shortcuts.hidden = false;
    ui.workspace.hidden = false;
    ui.logout.hidden = false;
    ui.loginMessage.textContent = '';
  }

  function startSession(token, { remembered = false } = {}) {
    state.token = token;
    state.wantConnected = true;
    state.tokenWorkedBefore = remembered;
    state.refusalsInARow = 0;
    state.attempt = 0;
    ui.connectButton.disabled = true;
    ui.loginMessage.textContent = '';
    connect();
  }

  function logout() {
    state.wantConnected = false;
    clearReconnectTimer();
    forgetToken();
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, 'logged out');
    state.token = '';
    ui.tokenInput.value = '';
    clearWorkspace();
    setConnection('offline', 'signed out');
    showLogin('');
  }

  function clearWorkspace() {
    for (const card of state.cards.values()) stopCardTimers(card);
    for (const task of state.tasks.values()) {
      window.clearTimeout(task.removeTimer);
      window.clearTimeout(task.saveTimer);
    }
    state.cards.clear();
    state.tasks.clear();
    state.seenPops.clear();
    state.lastSeqByCall.clear();
    state.outbox = [];
    state.agent = null;
    state.status = null;
    state.statusPending = null;
    ui.callList.replaceChildren();
    ui.taskList.replaceChildren();
    hideStatusLine();
    refreshLists();
  }

  // ---------------------------------------------------------------- status line

  function showStatusLine(text, tone) {
    ui.statusLine.hidden = false;
    ui.statusLine.dataset.tone = tone || 'info';
    ui.statusLineText.textContent = `${clockFormat.format(Date.now())}  ${text}`;
  }

  function hideStatusLine() {
    ui.statusLine.hidden = true;
    ui.statusLineText.textContent = '';
  }

  // ---------------------------------------------------------------- messages

  const handlers = {
    hello: onHello,
    status: onStatus,
    screen_pop: onScreenPop,
    call_update: onCallUpdate,
    pop_withdrawn: onPopWithdrawn,
    saved: onSaved,
    error: onServerError,
    task_offer: onTaskOffer,
    task_update: onTaskUpdate,
    task_withdrawn: onTaskWithdrawn,
  };

  function handleMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      showStatusLine('The server sent a message this page cannot read.', 'error');
      return;
    }
    if (!message || typeof message.type !== 'string') return;
    const handler = handlers[message.type];
    if (!handler) {
      console.debug('ringside: ignoring message', message.type);
      return;
    }
    try {
      handler(message);
    } catch (err) {
      console.error('ringside: failed to handle', message, err);
      showStatusLine(`Could not show a "${message.type}" message: ${err.message}`, 'error');
    }
  }

  function onHello(message) {
    const agent = message.agent && typeof message.agent === 'object' ? message.agent : {};
    state.agent = agent;
    state.dispositions = Array.isArray(message.dispositions)
      ? message.dispositions.filter((d) => d && isText(d.code))
      : [];
    const serverTime = parseTime(message.server_time);
    state.clockOffsetMs = serverTime === null ? 0 : serverTime - Date.now();
    state.status = agent.status === 'ready' ? 'ready' : 'away';
    // A change asked for while offline was sent on open; its confirmation is still to come.
    if (state.statusPending === state.status) state.statusPending = null;

    ui.agentName.textContent = isText(agent.name) ? agent.name : 'agent';
    const extensions = Array.isArray(agent.extensions) ? agent.extensions.filter(isText) : [];
    const meta = [];
    if (isText(agent.role) && agent.role !== 'agent') meta.push(agent.role);
    meta.push(extensions.length ? `ext ${extensions.join(', ')}` : 'no extension');
    ui.agentMeta.textContent = meta.join(' · ');
    ui.callsEmptyText.textContent = extensions.length
      ? `When extension ${extensions.join(' or ')} rings, the caller appears here.`
      : 'No phone extension is linked to your account, so no calls will pop here.';
    ui.agentBox.hidden = false;
    ui.statusToggle.hidden = false;
    renderStatus();
    for (const card of state.cards.values()) fillDispositionOptions(card);

    // Optional: the calls the server still considers live for this agent. A card still
    // ringing that is not among them rang out while the page was offline.
    if (Array.isArray(message.active_calls)) {
      const live = new Set(message.active_calls.map(String));
      for (const card of state.cards.values()) {
        if (!live.has(card.callId) && card.phase === 'ringing') endCard(card, { state: 'ended' });
      }
    }
    showWorkspace();
    flushOutbox();
  }

  function onStatus(message) {
    if (message.state !== 'ready' && message.state !== 'away') return;
    state.status = message.state;
    if (state.statusPending === message.state) state.statusPending = null;
    renderStatus();
    announce(`You are ${message.state}.`, { polite: true });
  }

  function requestStatus(next) {
    if (!state.agent) return;
    if (state.status === next && !state.statusPending) return;
    state.statusPending = next === state.status ? null : next;
    send({ type: 'status', state: next });
    renderStatus();
  }

  function renderStatus() {
    const shown = state.statusPending || state.status || 'away';
    ui.statusToggle.dataset.state = shown;
    ui.statusToggle.setAttribute('aria-checked', String(shown === 'ready'));
    ui.statusToggle.toggleAttribute('aria-busy', Boolean(state.statusPending));
    ui.statusToggle.classList.toggle('pending', Boolean(state.statusPending));
    ui.statusText.textContent = shown;
    ui.statusToggle.title = state.statusPending
      ? `Switching to ${state.statusPending}…`
      : `You are ${shown}. Press to go ${shown === 'ready' ? 'away' : 'ready'} (keys r / a).`;
  }

  // ---------------------------------------------------------------- screen pops

  function onScreenPop(pop) {
    if (pop.seq !== undefined && pop.seq !== null) send({ type: 'ack', seq: pop.seq });
    if (pop.call_id === undefined || pop.call_id === null) return;
    const callId = String(pop.call_id);
    const hasSeq = pop.seq !== undefined && pop.seq !== null;
    const popKey = `${callId}#${pop.seq}`;
    if (hasSeq && state.seenPops.has(popKey)) return;
    if (hasSeq) rememberPop(popKey);
    const lastSeq = state.lastSeqByCall.get(callId);
    if (typeof lastSeq === 'number' && typeof pop.seq === 'number' && pop.seq < lastSeq) return;
    if (typeof pop.seq === 'number') state.lastSeqByCall.set(callId, pop.seq);

    const existing = state.cards.get(callId);
    if (existing) {
      const askedForIt = existing.candidatePending !== null;
      existing.pop = pop;
      existing.candidatePending = null;
      window.clearTimeout(existing.candidateTimer);
      if (!askedForIt && (existing.phase === 'elsewhere' || existing.phase === 'withdrawn')) {
        // The call rings here again: bring the card back to life.
        existing.phase = 'ringing';
        existing.by = null;
        cancelRemoval(existing);
      }
      renderCardContent(existing);
      announce(`Caller is now shown as ${customerLabel(pop)}.`, { polite: true });
      return;
    }

    const card = createCard(callId, pop);
    state.cards.set(callId, card);
    ui.callList.prepend(card.el);
    refreshLists();
    pointToNewCall(card);
    announce(`Incoming call from ${customerLabel(pop)}, ${formatNumber(pop.caller) || 'number withheld'}.`);
  }

  // A new card lands at the top of the list; an agent scrolled down in another card would miss it.
  function pointToNewCall(card) {
    if (card.el.getBoundingClientRect().top >= ui.topbar.getBoundingClientRect().bottom) return;
    ui.newCallPill.textContent = `↑ New call: ${customerLabel(card.pop)}`;
    ui.newCallPill.dataset.callId = card.callId;
    ui.newCallPill.hidden = false;
  }

  function hideNewCallPillIfSeen() {
    if (ui.newCallPill.hidden) return;
    const card = state.cards.get(ui.newCallPill.dataset.callId);
    if (!card || card.el.getBoundingClientRect().top >= ui.topbar.getBoundingClientRect().bottom) ui.newCallPill.hidden = true;
  }

  function rememberPop(key) {
    state.seenPops.add(key);
    if (state.seenPops.size > SEEN_POPS_KEPT) {
      const oldest = state.seenPops.values().next().value;
      state.seenPops.delete(oldest);
    }
  }

  function isNewContact(customer) {
    return !customer || customer.provisional === true;
  }

  function customerLabel(pop) {
    const customer = pop.customer;
    if (isNewContact(customer)) return 'a new contact';
    const parts = [customer.name || 'unnamed customer'];
    if (isText(customer.tier)) parts.push(`tier ${String(customer.tier).toUpperCase()}`);
    if (customer.key_account) parts.push('key account');
    return parts.join(', ');
  }

  function createCard(callId, pop) {
    const card = {
      callId,
      pop,
      phase: 'ringing',
      by: null,
      outcome: null,
      answeredAt: null,
      saved: false,
      saving: false,
      saveTimer: null,
      removeTimer: null,
      candidatePending: null,
      candidateTimer: null,
      el: null,
      content: null,
      refs: {},
    };
    const titleId = uniqueId('call-title');
    card.el = h('article', {
      class: 'card pop-card',
      'data-testid': 'pop-card',
      'data-call-id': callId,
      'aria-labelledby': titleId,
      tabindex: '-1',
    });
    card.titleId = titleId;
    card.content = h('div', { class: 'card-content' });
    card.form = buildDispositionForm(card);
    card.el.append(card.content, card.form);
    renderCardContent(card);
    return card;
  }

  function renderCardContent(card) {
    const pop = card.pop;
    const hadFocus = card.content.contains(document.activeElement);
    const content = h('div', { class: 'card-content' },
      renderHints(pop.hints),
      renderCardHead(card),
      h('div', { class: 'card-body' },
        h('div', { class: 'card-main' }, renderCustomer(pop), renderCandidates(card)),
        h('div', { class: 'card-side' },
          renderComplaints(pop.open_complaints),
          renderOpenTasks(pop.tasks),
          renderHistory(pop.history))));
    card.content.replaceWith(content);
    card.content = content;
    updateCardPhase(card);
    if (hadFocus) card.el.focus();
  }

  function renderHints(hints) {
    if (!Array.isArray(hints) || hints.length === 0) return null;
    const chips = hints.map((hint) => {
      const item = typeof hint === 'string' ? { text: hint, severity: 'info' } : hint || {};
      const severity = ['info', 'warn', 'vip'].includes(item.severity) ? item.severity : 'info';
      const text = isText(item.text) ? item.text : words(item.code);
      if (!text) return null;
      return h('li', { class: `hint hint-${severity}`, 'data-testid': 'hint', 'data-code': item.code || null },
        h('span', { class: 'hint-icon', 'aria-hidden': 'true', text: severity === 'vip' ? '★' : severity === 'warn' ? '!' : 'i' }),
        text);
    });
    return h('ul', { class: 'hints', 'aria-label': 'Things to know' }, chips);
  }

  function renderCardHead(card) {
    const pop = card.pop;
    const withheld = pop.match && pop.match.kind === 'withheld';
    const number = withheld ? 'number withheld' : formatNumber(pop.caller) || 'unknown number';
    const inbound = pop.direction !== 'outbound';
    const dialed = pop.dialed ? formatNumber(pop.dialed) : '';
    card.refs.state = h('span', { class: 'card-state', 'data-testid': 'card-state' });
    card.refs.timer = h('span', { class: 'call-timer', 'aria-label': 'call duration' });
    card.refs.stateNote = h('span', { class: 'state-note' });
    card.refs.dismiss = h('button', {
      type: 'button', class: 'icon-button dismiss', 'aria-label': 'Close this card (Esc)', title: 'Close (Esc)',
      text: '×', onclick: () => dismissCard(card),
    });
    return h('header', { class: 'card-head' },
      h('div', { class: 'caller' },
        h('span', { class: `direction ${inbound ? 'in' : 'out'}`, text: inbound ? 'Incoming call' : 'Outgoing call' }),
        h('span', { class: 'caller-number', id: card.titleId, title: pop.caller && pop.caller.raw ? `as received: ${pop.caller.raw}` : null },
          number),
        dialed ? h('span', { class: 'dialed', text: `to ${dialed}` }) : null),
      h('div', { class: 'card-status' },
        h('div', { class: 'state-row' }, card.refs.state, card.refs.timer, card.refs.dismiss),
        card.refs.stateNote));
  }

  function tierBadge(tier) {
    if (!isText(tier)) return null;
    const letter = String(tier).trim().toUpperCase();
    const names = { A: 'gold', B: 'silver', C: 'standard' };
    return [
      h('span', { class: 'sr-only', text: 'tier ' }),
      h('span', { class: `tier tier-${letter.toLowerCase()}`, 'data-testid': 'tier',
        title: `Tier ${letter}${names[letter] ? ` (${names[letter]})` : ''}`, text: letter }),
    ];
  }

  function isVip(pop) {
    const customer = pop.customer || {};
    const tags = Array.isArray(customer.tags) ? customer.tags : [];
    const hints = Array.isArray(pop.hints) ? pop.hints : [];
    return tags.some((tag) => /^vip$/i.test(String(tag)))
      || hints.some((hint) => hint && typeof hint === 'object' && hint.severity === 'vip');
  }

  function renderCustomer(pop) {
    const customer = pop.customer;
    const match = pop.match && typeof pop.match === 'object' ? pop.match : null;
    const matchInfo = match ? MATCH_TEXT[match.kind] : null;
    const matchReasons = match && Array.isArray(match.reasons) ? match.reasons.filter(isText) : [];
    const matchLine = matchInfo
      ? h('p', { class: `match ${matchInfo[1] ? `match-${matchInfo[1]}` : ''}`, title: matchReasons.join('\n') || null },
        matchInfo[0])
      : null;

    if (isNewContact(customer)) {
      const provisionalName = customer && isText(customer.name) ? customer.name : '';
      return h('section', { class: 'customer new-contact', 'aria-label': 'Customer' },
        h('div', { class: 'name-row' },
          h('h3', { class: 'customer-name', 'data-testid': 'customer-name', text: 'new contact' }),
          provisionalName ? h('span', { class: 'provisional-name', text: `saved as “${provisionalName}”` }) : null),
        matchLine,
        customer && isText(customer.notes) ? h('p', { class: 'notes', text: customer.notes }) : null);
    }

    const facts = [];
    if (isText(customer.account_manager)) facts.push(fact('Account manager', customer.account_manager));
    if (isText(customer.language)) facts.push(fact('Language', customer.language));
    const localTime = localTimeIn(customer.timezone);
    if (localTime) facts.push(fact('Local time', `${localTime} (${customer.timezone})`));
    const birthday = formatBirthday(customer.birthday);
    if (birthday) facts.push(fact('Birthday', birthday));

    const tags = Array.isArray(customer.tags) ? customer.tags.filter(isText) : [];
    const phones = Array.isArray(customer.phones) ? customer.phones.filter((p) => p && (p.e164 || p.raw)) : [];

    return h('section', { class: 'customer', 'aria-label': 'Customer' },
      h('div', { class: 'name-row' },
        h('h3', { class: 'customer-name', 'data-testid': 'customer-name', text: customer.name || 'unnamed customer' }),
        tierBadge(customer.tier),
        customer.key_account ? h('span', { class: 'badge badge-key', text: 'Key account' }) : null,
        isVip(pop) ? h('span', { class: 'badge badge-vip', text: 'VIP' }) : null),
      matchLine,
      facts.length ? h('dl', { class: 'facts' }, facts) : null,
      tags.length ? h('ul', { class: 'tags', 'aria-label': 'Tags' }, tags.map((tag) => h('li', { class: 'tag', text: tag }))) : null,
      isText(customer.notes) ? h('p', { class: 'notes', text: customer.notes }) : null,
      phones.length > 1 ? renderPhones(phones, pop.caller) : null);
  }

  function fact(label, value) {
    return h('div', { class: 'fact' }, h('dt', { text: label }), h('dd', { text: value }));
  }

  function renderPhones(phones, caller) {
    const callerE164 = caller && caller.e164;
    return h('details', { class: 'phones' },
      h('summary', { text: `${phones.length} phone numbers` }),
      h('ul', null, phones.map((phone) => h('li', { class: phone.e164 && phone.e164 === callerE164 ? 'calling' : null },
        h('span', { class: 'phone-number', text: formatNumber(phone) }),
        isText(phone.kind) ? h('span', { class: 'muted', text: ` ${phone.kind}` }) : null,
        phone.primary ? h('span', { class: 'muted', text: ' · primary' }) : null,
        phone.e164 && phone.e164 === callerE164 ? h('span', { class: 'muted', text: ' · calling now' }) : null))));
  }

  function renderCandidates(card) {
    const candidates = Array.isArray(card.pop.candidates) ? card.pop.candidates.filter((c) => c && c.customer) : [];
    if (candidates.length === 0) return null;
    const headingId = uniqueId('candidates');
    const items = candidates.map((candidate, index) => {
      const customer = candidate.customer;
      const pending = card.candidatePending !== null && String(card.candidatePending) === String(customer.id);
      const reasons = Array.isArray(candidate.reasons) ? candidate.reasons.filter(isText) : [];
      const score = typeof candidate.score === 'number'
        ? (candidate.score <= 1 ? `${Math.round(candidate.score * 100)}%` : String(candidate.score))
        : null;
      return h('li', null,
        h('button', {
          type: 'button', class: 'candidate', 'data-testid': 'candidate', 'data-customer-id': customer.id,
          'aria-busy': pending ? 'true' : null, disabled: card.candidatePending !== null,
          onclick: () => selectCandidate(card, index),
        },
        index < 9 ? h('kbd', { class: 'candidate-key', text: String(index + 1) }) : h('span', { class: 'candidate-key' }),
        h('span', { class: 'candidate-main' },
          h('span', { class: 'candidate-name', text: customer.name || (customer.provisional ? 'new contact' : 'unnamed customer') }),
          isText(customer.tier) ? h('span', { class: `tier tier-${String(customer.tier).toLowerCase()} small`, text: String(customer.tier).toUpperCase() }) : null,
          customer.key_account ? h('span', { class: 'badge badge-key small', text: 'Key account' }) : null,
          isText(customer.account_manager) ? h('span', { class: 'muted', text: `AM ${customer.account_manager}` }) : null),
        h('span', { class: 'candidate-why' },
          pending ? 'switching…' : [reasons.join(' · '), score ? ` · match ${score}` : ''].join(''))));
    });
    return h('section', { class: 'candidates', 'aria-labelledby': headingId },
      h('h4', { id: headingId, text: 'Also on this number' }),
      h('p', { class: 'section-hint', text: 'Not the right person? Pick who is calling (keys 1–9).' }),
      h('ol', null, items));
  }

  function selectCandidate(card, index) {
    const candidates = Array.isArray(card.pop.candidates) ? card.pop.candidates.filter((c) => c && c.customer) : [];
    const candidate = candidates[index];
    if (!candidate || card.candidatePending !== null) return;
    card.candidatePending = candidate.customer.id;
    send({ type: 'select_customer', call_id: card.callId, customer_id: candidate.customer.id });
    renderCardContent(card);
    window.clearTimeout(card.candidateTimer);
    card.candidateTimer = window.setTimeout(() => {
      if (card.candidatePending === null) return;
      card.candidatePending = null;
      renderCardContent(card);
      showFormError(card.refs.feedback, 'The server did not switch the customer. Try again.');
    }, SAVE_TIMEOUT_MS);
  }

  function renderComplaints(complaints) {
    if (!Array.isArray(complaints) || complaints.length === 0) return null;
    return section('complaints', `Open complaints (${complaints.length})`, h('ul', { class: 'item-list' },
      complaints.map((complaint) => h('li', { class: 'item complaint' },
        h('p', { class: 'item-title', text: complaint.summary || 'complaint' }),
        h('p', { class: 'item-meta' },
          isText(complaint.owner) ? [h('span', { text: 'owner ' }), h('strong', { text: complaint.owner })] : 'no owner yet',
          ' · opened ', timeElement(complaint.opened_at) || 'unknown',
          isText(complaint.status) ? ` · ${words(complaint.status)}` : '')))));
  }

  function renderOpenTasks(tasks) {
    if (!Array.isArray(tasks) || tasks.length === 0) return null;
    return section('open-tasks', `Open tasks (${tasks.length})`, h('ul', { class: 'item-list' },
      tasks.map((task) => {
        const due = parseTime(task.due_at);
        const overdue = due !== null && due < serverNow();
        return h('li', { class: 'item task-line' },
          h('p', { class: 'item-title', text: words(task.kind) || 'task' }),
          h('p', { class: 'item-meta' },
            due !== null ? h('span', { class: overdue ? 'overdue' : null }, overdue ? 'was due ' : 'due ', timeElement(task.due_at)) : 'no due date',
            isText(task.state) ? ` · ${words(task.state)}` : '',
            isText(task.preferred_agent) ? ` · for ${task.preferred_agent}` : ''));
      })));
  }

  function renderHistory(history) {
    if (!Array.isArray(history) || history.length === 0) {
      return section('history', 'Last interactions', h('p', { class: 'muted small-text', text: 'No earlier interactions.' }));
    }
    const sorted = [...history].sort((a, b) => (parseTime(b.at) ?? 0) - (parseTime(a.at) ?? 0));
    const rows = sorted.map(historyRow);
    const list = h('ol', { class: 'history-list' }, rows.slice(0, HISTORY_SHOWN));
    let more = null;
    if (rows.length > HISTORY_SHOWN) {
      more = h('button', {
        type: 'button', class: 'link-button', text: `show ${rows.length - HISTORY_SHOWN} older`,
        onclick: () => { list.append(...rows.slice(HISTORY_SHOWN)); more.remove(); },
      });
    }
    return section('history', 'Last interactions', list, more);
  }

  function historyRow(entry) {
    const outbound = entry.direction === 'outbound';
    const satisfaction = Number(entry.satisfaction);
    return h('li', { class: 'history-item' },
      h('div', { class: 'history-when' }, timeElement(entry.at) || h('span', { text: '—' })),
      h('div', { class: 'history-body' },
        h('p', { class: 'history-line' },
          h('span', { class: `direction-mini ${outbound ? 'out' : 'in'}`, title: outbound ? 'outbound' : 'inbound', text: outbound ? '↗' : '↙' }),
          h('span', { class: 'history-kind', text: words(entry.kind) || 'call' }),
          isText(entry.disposition) ? h('span', { class: 'dispo-tag', text: dispositionLabel(entry.disposition) }) : null,
          isText(entry.agent) ? h('span', { class: 'muted', text: entry.agent }) : null,
          satisfaction >= 1 && satisfaction <= 5
            ? h('span', { class: 'stars', title: `satisfaction ${satisfaction} of 5`, 'aria-label': `satisfaction ${satisfaction} of 5`,
              text: '★'.repeat(satisfaction) + '☆'.repeat(5 - satisfaction) })
            : null),
        isText(entry.note) ? h('p', { class: 'history-note', title: entry.note, text: entry.note }) : null));
  }

  function dispositionLabel(code) {
    const known = state.dispositions.find((d) => d.code === code);
    return known && isText(known.label) ? known.label : words(code);
  }

  function section(kind, title, ...body) {
    const headingId = uniqueId(kind);
    return h('section', { class: `card-section ${kind}`, 'aria-labelledby': headingId },
      h('h4', { id: headingId, text: title }), body);
  }

  // ---------------------------------------------------------------- disposition form

  function isSurveyCode(code) {
    const known = state.dispositions.find((d) => d.code === code);
    if (known && typeof known.survey === 'boolean') return known.survey;
    const text = `${code} ${known ? known.label : ''}`;
    return /survey|satisf|满意|回访|调查/i.test(text);
  }

  function buildDispositionForm(card) {
    const selectId = uniqueId('dispo-code');
    const noteId = uniqueId('dispo-note');
    const refs = card.refs;
    refs.code = h('select', { id: selectId, 'data-testid': 'disposition-code', required: true });
    refs.note = h('textarea', { id: noteId, 'data-testid': 'disposition-note', rows: '1',
      placeholder: 'What was it about? What was promised?' });
    refs.satisfaction = satisfactionField('Satisfaction (optional)');
    refs.save = h('button', { type: 'submit', class: 'primary-button', 'data-testid': 'disposition-save', text: 'Save' });
    refs.feedback = h('div', { class: 'form-feedback', 'aria-live': 'polite' });
    const form = h('form', { class: 'dispo-form', 'aria-label': 'Disposition', novalidate: true },
      h('div', { class: 'form-grid' },
        h('div', { class: 'field field-code' }, h('label', { for: selectId, text: 'Disposition' }), refs.code),
        h('div', { class: 'field field-note' }, h('label', { for: noteId, text: 'Note' }), refs.note),
        h('div', { class: 'field-save' }, refs.save)),
      refs.satisfaction.el,
      h('div', { class: 'form-footer' },
        h('span', { class: 'form-hint', text: 'Enter saves · Shift+Enter new line' }), refs.feedback));
    fillDispositionOptions(card);

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submitDisposition(card);
    });
    refs.code.addEventListener('change', () => {
      refs.satisfaction.el.hidden = !isSurveyCode(refs.code.value);
      formEdited(card);
    });
    refs.code.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    refs.note.addEventListener('input', () => formEdited(card));
    refs.note.addEventListener('keydown', (event) => submitOnEnter(event, form));
    refs.satisfaction.el.addEventListener('change', () => formEdited(card));
    return form;
  }

  // Enter saves, Shift+Enter breaks the line; never while an input method is composing (Chinese).
  function submitOnEnter(event, form) {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit();
  }

  function satisfactionField(legendText) {
    const name = uniqueId('satisfaction');
    const radios = [];
    const options = [['', 'none']].concat([1, 2, 3, 4, 5].map((n) => [String(n), String(n)]));
    const labels = options.map(([value, text]) => {
      const input = h('input', { type: 'radio', name, value, checked: value === '' });
      radios.push(input);
      return h('label', { class: `score${value === '' ? ' score-none' : ''}` }, input, h('span', { text }));
    });
    const el = h('fieldset', { class: 'field satisfaction', hidden: true },
      h('legend', { text: legendText }), h('div', { class: 'scores' }, labels));
    return {
      el,
      value() {
        const checked = radios.find((r) => r.checked);
        return checked && checked.value ? Number(checked.value) : null;
      },
      reset() {
        for (const radio of radios) radio.checked = radio.value === '';
      },
    };
  }

  function fillDispositionOptions(card) {
    const select = card.refs.code;
    const current = select.value;
    const options = [h('option', { value: '', text: 'Choose…' })];
    for (const d of state.dispositions) {
      options.push(h('option', { value: d.code, text: isText(d.label) ? d.label : words(d.code) }));
    }
    select.replaceChildren(...options);
    if (current && state.dispositions.some((d) => d.code === current)) select.value = current;
    card.refs.satisfaction.el.hidden = !isSurveyCode(select.value);
  }

  function isDirty(card) {
    return card.refs.note.value.trim() !== '' && !card.saved;
  }

  function formEdited(card) {
    // Typing on a card keeps it: an agent's note is never thrown away by a timer.
    if (isDirty(card)) cancelRemoval(card);
    if (card.saved) {
      card.saved = false;
      card.refs.save.textContent = 'Save changes';
      card.refs.feedback.replaceChildren();
    }
    clearFormError(card.refs.feedback);
    updateCardPhase(card);
  }

  function submitDisposition(card) {
    const refs = card.refs;
    const code = refs.code.value;
    if (!code) {
      showFormError(refs.feedback, 'Choose a disposition first.');
      refs.code.focus();
      return;
    }
    if (card.saving) return;
    const message = { type: 'disposition', call_id: card.callId, code, note: refs.note.value.trim() };
    const satisfaction = refs.satisfaction.el.hidden ? null : refs.satisfaction.value();
    if (satisfaction !== null) message.satisfaction = satisfaction;
    const sent = send(message);
    card.saving = true;
    refs.save.disabled = true;
    refs.feedback.replaceChildren(h('span', { class: 'pending-text', text: sent ? 'Saving…' : 'Offline: will save when reconnected…' }));
    window.clearTimeout(card.saveTimer);
    card.saveTimer = whenUnanswered(message, () => card.saving, () => {
      card.saving = false;
      refs.save.disabled = false;
      showFormError(refs.feedback, 'No answer from the server. Try saving again.');
    });
  }

  // Gives up on a reply SAVE_TIMEOUT_MS after the message actually left; while it waits in
  // the outbox for a connection, the clock does not run.
  function whenUnanswered(message, stillWaiting, giveUp) {
    return window.setTimeout(function check() {
      if (!stillWaiting()) return;
      if (state.outbox.includes(message)) {
        window.setTimeout(check, SAVE_TIMEOUT_MS);
        return;
      }
      giveUp();
    }, SAVE_TIMEOUT_MS);
  }

  function showFormError(feedback, text) {
    feedback.replaceChildren(h('span', { class: 'form-error', role: 'alert', text }));
  }

  function clearFormError(feedback) {
    const error = feedback.querySelector('.form-error');
    if (error) error.remove();
  }

  function savedMark(testid) {
    return h('span', { class: 'saved-mark', 'data-testid': testid, text: `Saved ✓ ${clockFormat.format(Date.now())}` });
  }

  function onSaved(message) {
    if (message.call_id !== undefined && message.call_id !== null) {
      const card = state.cards.get(String(message.call_id));
      if (!card) return;
      window.clearTimeout(card.saveTimer);
      card.saving = false;
      card.saved = true;
      card.refs.save.disabled = false;
      card.refs.save.textContent = 'Saved';
      card.refs.feedback.replaceChildren(savedMark('disposition-saved'));
      updateCardPhase(card);
      if (card.phase !== 'ringing' && card.phase !== 'on_call') scheduleRemoval(card, SAVED_CARD_LINGER_MS);
      return;
    }
    if (message.task_id !== undefined && message.task_id !== null) {
      const task = state.tasks.get(String(message.task_id));
      if (!task) return;
      window.clearTimeout(task.saveTimer);
      task.saving = false;
      task.saved = true;
      task.refs.save.disabled = true;
      task.refs.save.textContent = 'Saved';
      task.refs.feedback.replaceChildren(savedMark('task-saved'));
      renderTaskState(task);
      scheduleTaskRemoval(task, SAVED_CARD_LINGER_MS);
    }
  }

  function onServerError(message) {
    const text = isText(message.message) ? message.message : words(message.code) || 'something went wrong';
    const ref = message.ref ?? message.call_id ?? message.task_id;
    const refText = ref === undefined || ref === null ? null : String(ref);
    const card = refText !== null ? state.cards.get(refText) : null;
    if (card) {
      window.clearTimeout(card.saveTimer);
      card.saving = false;
      card.refs.save.disabled = false;
      if (card.candidatePending !== null) {
        card.candidatePending = null;
        window.clearTimeout(card.candidateTimer);
        renderCardContent(card);
      }
      showFormError(card.refs.feedback, text);
      return;
    }
    const task = refText !== null ? state.tasks.get(refText) : null;
    if (task) {
      task.saving = false;
      task.accepting = false;
      renderTaskState(task);
      showFormError(task.refs.feedback, text);
      return;
    }
    showStatusLine(isText(message.code) ? `${text} (${message.code})` : text, 'error');
  }

  // ---------------------------------------------------------------- call state

  function onCallUpdate(message) {
    const card = state.cards.get(String(message.call_id));
    if (!card) return;
    const me = state.agent || {};
    const byOther = isText(message.by) && message.by !== me.name && message.by !== me.id;
    if (message.state === 'answered' && !byOther) {
      card.phase = 'on_call';
      card.answeredAt = parseTime(message.at) === null ? Date.now() : parseTime(message.at) - state.clockOffsetMs;
      cancelRemoval(card);
      updateCardPhase(card);
      announce(`On call with ${customerLabel(card.pop)}.`, { polite: true });
    } else if (message.state === 'answered_elsewhere' || (message.state === 'answered' && byOther)) {
      if (card.phase === 'on_call') return;
      card.phase = 'elsewhere';
      card.by = isText(message.by) ? message.by : null;
      updateCardPhase(card);
      scheduleRemoval(card, WITHDRAWN_CARD_LINGER_MS);
    } else if (message.state === 'ended') {
      endCard(card, message);
    }
  }

  function endCard(card, message) {
    card.outcome = isText(message.outcome) ? message.outcome : null;
    if (card.phase === 'elsewhere') {
      updateCardPhase(card);
      return;
    }
    const wasMine = card.answeredAt !== null;
    card.phase = 'ended';
    card.endedAt = Date.now();
    updateCardPhase(card);
    if (wasMine) {
      if (card.saved) {
        scheduleRemoval(card, SAVED_CARD_LINGER_MS);
      } else if (!isEditing()) {
        // The agent's next job is the disposition: put the cursor there.
        card.refs.code.focus({ preventScroll: false });
      }
      announce('Call ended. Record the disposition.', { polite: true });
    } else {
      scheduleRemoval(card, WITHDRAWN_CARD_LINGER_MS);
    }
  }

  function onPopWithdrawn(message) {
    const card = state.cards.get(String(message.call_id));
    if (!card || card.phase === 'on_call') return;
    if (isDirty(card)) {
      card.phase = 'withdrawn';
      updateCardPhase(card);
      return;
    }
    removeCard(card);
  }

  function needsDisposition(card) {
    return card.phase === 'ended' && card.answeredAt !== null && !card.saved;
  }

  function updateCardPhase(card) {
    const el = card.el;
    el.dataset.phase = card.phase;
    el.classList.toggle('needs-disposition', needsDisposition(card));
    el.classList.toggle('is-saved', card.saved);
    const refs = card.refs;
    if (!refs.state) return;
    refs.state.textContent = PHASE_LABEL[card.phase];
    refs.timer.hidden = card.answeredAt === null;
    renderTimer(card);
    let note = '';
    if (card.phase === 'elsewhere') note = card.by ? `answered by ${card.by}` : 'someone else took this call';
    else if (card.phase === 'withdrawn') note = 'stopped ringing here';
    else if (needsDisposition(card)) note = 'record the disposition';
    else if (card.phase === 'ended' && card.outcome) note = words(card.outcome);
    refs.stateNote.textContent = note;
    refs.dismiss.hidden = card.phase === 'ringing' || card.phase === 'on_call';
    refreshLists();
  }

  function renderTimer(card) {
    if (card.answeredAt === null || !card.refs.timer) return;
    const end = card.endedAt && card.phase !== 'on_call' ? card.endedAt : Date.now();
    card.refs.timer.textContent = formatDuration(end - card.answeredAt);
  }

  function scheduleRemoval(card, delay) {
    cancelRemoval(card);
    if (isDirty(card) || card.saving || needsDisposition(card)) return;
    card.removeTimer = window.setTimeout(() => {
      card.removeTimer = null;
      // Never pull a card away from under the agent's cursor; try again shortly.
      if (card.el.contains(document.activeElement) && document.activeElement !== card.el) {
        scheduleRemoval(card, 1500);
        return;
      }
      removeCard(card);
    }, delay);
    card.el.classList.add('leaving-soon');
  }

  function cancelRemoval(card) {
    if (card.removeTimer) window.clearTimeout(card.removeTimer);
    card.removeTimer = null;
    card.el.classList.remove('leaving-soon');
  }

  function stopCardTimers(card) {
    cancelRemoval(card);
    window.clearTimeout(card.saveTimer);
    window.clearTimeout(card.candidateTimer);
  }

  function removeCard(card) {
    stopCardTimers(card);
    if (state.cards.get(card.callId) !== card) return;
    state.cards.delete(card.callId);
    const hadFocus = card.el.contains(document.activeElement);
    const next = card.el.nextElementSibling || card.el.previousElementSibling;
    card.el.classList.add('leaving');
    const finish = () => {
      card.el.remove();
      refreshLists();
      if (hadFocus) (next || document.getElementById('calls')).focus();
    };
    if (window.matchMedia('(prefers-reduced-motion: reduce)').matches) finish();
    else window.setTimeout(finish, 250);
  }

  // Closing a card whose note or disposition is unsaved takes a second press, so a stray Esc
  // never loses the agent's work.
  function dismissCard(card) {
    if (needsDisposition(card) || isDirty(card)) {
      if (state.escapeArmed === card) {
        state.escapeArmed = null;
        removeCard(card);
        return;
      }
      state.escapeArmed = card;
      card.refs.stateNote.textContent = 'not saved: press Esc or × again to close anyway';
      window.setTimeout(() => {
        if (state.escapeArmed === card) {
          state.escapeArmed = null;
          updateCardPhase(card);
        }
      }, ESCAPE_CONFIRM_MS);
      return;
    }
    removeCard(card);
  }

  function refreshLists() {
    const callCount = ui.callList.children.length;
    ui.callsEmpty.hidden = callCount > 0;
    ui.callsCount.textContent = callCount ? String(callCount) : '';
    hideNewCallPillIfSeen();
    const taskCount = ui.taskList.children.length;
    ui.tasksEmpty.hidden = taskCount > 0;
    ui.tasksCount.textContent = taskCount ? String(taskCount) : '';
    const ringing = [...state.cards.values()].filter((c) => c.phase === 'ringing').length;
    document.title = ringing ? `(${ringing}) ringing · ringside` : 'ringside · agent console';
    markCurrentCard();
  }

  // ---------------------------------------------------------------- outbound tasks

  function onTaskOffer(message) {
    const offered = message.task;
    if (!offered || offered.id === undefined || offered.id === null) return;
    const taskId = String(offered.id);
    const existing = state.tasks.get(taskId);
    if (existing) {
      existing.task = offered;
      renderTaskBody(existing);
      return;
    }
    const task = {
      taskId, task: offered, state: 'offered', accepting: false, saving: false, saved: false,
      outcome: null, removeTimer: null, saveTimer: null, refs: {}, el: null, body: null,
    };
    buildTaskCard(task);
    state.tasks.set(taskId, task);
    ui.taskList.prepend(task.el);
    refreshLists();
    announce(`Outbound call offered: ${words(offered.kind) || 'call'} to ${offered.customer && offered.customer.name ? offered.customer.name : formatNumber({ e164: offered.number, raw: offered.number })}.`, { polite: true });
  }

  function buildTaskCard(task) {
    const titleId = uniqueId('task-title');
    task.titleId = titleId;
    task.el = h('article', { class: 'card task-card', 'data-testid': 'task-card', 'data-task-id': task.taskId,
      'aria-labelledby': titleId, tabindex: '-1' });
    task.body = h('div');
    task.refs.state = h('span', { class: 'card-state task-state', 'data-testid': 'task-state' });
    task.refs.accept = h('button', { type: 'button', class: 'primary-button', 'data-testid': 'task-accept', text: 'Accept and call',
      onclick: () => acceptTask(task) });
    task.refs.waiting = h('p', { class: 'pending-text', hidden: true, text: 'Accepted: the call is being placed…' });
    task.form = buildTaskForm(task);
    task.form.hidden = true;
    task.refs.kind = h('p', { class: 'task-kind' });
    task.el.append(h('div', { class: 'task-top' }, task.refs.kind, task.refs.state), task.body,
      h('div', { class: 'task-actions' }, task.refs.accept, task.refs.waiting), task.form);
    renderTaskBody(task);
    renderTaskState(task);
  }

  function renderTaskBody(task) {
    const t = task.task;
    const customer = t.customer && typeof t.customer === 'object' ? t.customer : null;
    const due = parseTime(t.due_at);
    const overdue = due !== null && due < serverNow();
    const number = formatNumber({ e164: t.number, raw: t.number }) || (customer && Array.isArray(customer.phones) && customer.phones[0]
      ? formatNumber(customer.phones[0]) : '');
    task.refs.kind.textContent = words(t.kind) || 'outbound call';
    const body = h('div', { class: 'task-body' },
      h('div', { class: 'name-row' },
        h('h3', { class: 'customer-name', id: task.titleId, 'data-testid': 'task-customer',
          text: customer && isText(customer.name) && !customer.provisional ? customer.name : 'new contact' }),
        customer ? tierBadge(customer.tier) : null,
        customer && customer.key_account ? h('span', { class: 'badge badge-key', text: 'Key account' }) : null),
      number ? h('p', { class: 'task-number', text: number }) : null,
      isText(t.reason) ? h('p', { class: 'task-reason', text: t.reason }) : null,
      h('p', { class: 'item-meta' },
        due !== null ? h('span', { class: overdue ? 'overdue' : null }, overdue ? 'was due ' : 'due ', timeElement(t.due_at)) : 'no due date',
        Number(t.attempts) > 0 ? ` · ${t.attempts} earlier attempt${Number(t.attempts) === 1 ? '' : 's'}` : ' · first attempt',
        customer && isText(customer.account_manager) ? ` · AM ${customer.account_manager}` : ''),
      isText(t.script) ? h('details', { class: 'script', open: true },
        h('summary', { text: 'Script' }), h('p', { class: 'script-text', text: t.script })) : null);
    task.body.replaceWith(body);
    task.body = body;
  }

  function buildTaskForm(task) {
    const outcomeId = uniqueId('task-outcome');
    const noteId = uniqueId('task-note');
    const refs = task.refs;
    refs.outcome = h('select', { id: outcomeId, 'data-testid': 'task-outcome', required: true },
      h('option', { value: '', text: 'Choose…' }),
      TASK_OUTCOMES.map(([value, label]) => h('option', { value, text: label })));
    refs.note = h('textarea', { id: noteId, 'data-testid': 'task-note', rows: '1', placeholder: 'Anything to pass on?' });
    refs.satisfaction = satisfactionField('Satisfaction (optional)');
    refs.save = h('button', { type: 'submit', class: 'primary-button', 'data-testid': 'task-save', text: 'Save result' });
    refs.feedback = h('div', { class: 'form-feedback', 'aria-live': 'polite' });
    const form = h('form', { class: 'dispo-form task-form', 'aria-label': 'Call result', novalidate: true },
      h('div', { class: 'form-grid' },
        h('div', { class: 'field field-code' }, h('label', { for: outcomeId, text: 'Outcome' }), refs.outcome),
        h('div', { class: 'field field-note' }, h('label', { for: noteId, text: 'Note' }), refs.note),
        h('div', { class: 'field-save' }, refs.save)),
      refs.satisfaction.el,
      h('div', { class: 'form-footer' }, refs.feedback));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submitTaskResult(task);
    });
    refs.outcome.addEventListener('change', () => {
      refs.satisfaction.el.hidden = refs.outcome.value !== 'answered_done';
      taskFormEdited(task);
    });
    refs.outcome.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    refs.note.addEventListener('input', () => taskFormEdited(task));
    refs.note.addEventListener('keydown', (event) => submitOnEnter(event, form));
    return form;
  }

  function taskFormEdited(task) {
    window.clearTimeout(task.removeTimer);
    task.removeTimer = null;
    clearFormError(task.refs.feedback);
    if (task.saved) {
      task.saved = false;
      task.refs.save.disabled = false;
      task.refs.save.textContent = 'Save changes';
      task.refs.feedback.replaceChildren();
    }
  }

  function acceptTask(task) {
    if (task.accepting || task.state !== 'offered') return;
    task.accepting = true;
    send({ type: 'accept_task', task_id: task.task.id });
    renderTaskState(task);
  }

  function onTaskUpdate(message) {
    const task = state.tasks.get(String(message.task_id));
    if (!task) return;
    if (!['dialing', 'connected', 'done', 'failed'].includes(message.state)) return;
    task.state = message.state;
    task.accepting = false;
    if (isText(message.outcome) && TASK_OUTCOMES.some(([value]) => value === message.outcome) && !task.refs.outcome.value) {
      task.refs.outcome.value = message.outcome;
      task.refs.satisfaction.el.hidden = message.outcome !== 'answered_done';
    }
    renderTaskState(task);
    if (message.state === 'connected') announce('Outbound call connected.', { polite: true });
  }

  function renderTaskState(task) {
    const labels = { offered: 'offered', dialing: 'dialing', connected: 'connected', done: 'done', failed: 'failed', withdrawn: 'withdrawn' };
    const shown = task.accepting ? 'accepting' : labels[task.state] || words(task.state);
    task.refs.state.textContent = task.saved ? 'saved' : shown;
    task.el.dataset.state = task.saved ? 'saved' : task.state;
    const offered = task.state === 'offered';
    task.refs.accept.hidden = !offered || task.accepting;
    task.refs.accept.disabled = task.accepting;
    task.refs.waiting.hidden = !(offered && task.accepting);
    const wasHidden = task.form.hidden;
    task.form.hidden = offered || task.state === 'withdrawn';
    if (wasHidden && !task.form.hidden && !isEditing()) task.refs.outcome.focus();
    task.refs.save.disabled = task.saving || task.saved;
  }

  function submitTaskResult(task) {
    const refs = task.refs;
    const outcome = refs.outcome.value;
    if (!outcome) {
      showFormError(refs.feedback, 'Choose an outcome first.');
      refs.outcome.focus();
      return;
    }
    if (task.saving) return;
    const message = { type: 'task_result', task_id: task.task.id, outcome, note: refs.note.value.trim() };
    const satisfaction = refs.satisfaction.el.hidden ? null : refs.satisfaction.value();
    if (satisfaction !== null) message.satisfaction = satisfaction;
    const sent = send(message);
    task.saving = true;
    refs.feedback.replaceChildren(h('span', { class: 'pending-text', text: sent ? 'Saving…' : 'Offline: will save when reconnected…' }));
    renderTaskState(task);
    window.clearTimeout(task.saveTimer);
    task.saveTimer = whenUnanswered(message, () => task.saving, () => {
      task.saving = false;
      renderTaskState(task);
      showFormError(refs.feedback, 'No answer from the server. Try saving again.');
    });
  }

  function onTaskWithdrawn(message) {
    const task = state.tasks.get(String(message.task_id));
    if (!task) return;
    if (task.refs.note.value.trim() !== '' && !task.saved) {
      task.state = 'withdrawn';
      task.el.dataset.state = 'withdrawn';
      task.refs.state.textContent = 'withdrawn';
      return;
    }
    removeTask(task);
  }

  function scheduleTaskRemoval(task, delay) {
    window.clearTimeout(task.removeTimer);
    task.removeTimer = window.setTimeout(() => {
      if (task.el.contains(document.activeElement) && document.activeElement !== task.el) {
        scheduleTaskRemoval(task, 1500);
        return;
      }
      removeTask(task);
    }, delay);
  }

  function removeTask(task) {
    window.clearTimeout(task.removeTimer);
    window.clearTimeout(task.saveTimer);
    if (state.tasks.get(task.taskId) !== task) return;
    state.tasks.delete(task.taskId);
    const hadFocus = task.el.contains(document.activeElement);
    task.el.remove();
    refreshLists();
    if (hadFocus) document.getElementById('outbound').focus();
  }

  // ---------------------------------------------------------------- keyboard

  function isEditing() {
    const el = document.activeElement;
    if (!el) return false;
    return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
  }

  function cardsInOrder() {
    return [...ui.callList.children].map((el) => state.cards.get(el.dataset.callId)).filter(Boolean);
  }

  // The card the shortcut keys act on: the one holding focus, else the call in progress,
  // else a finished call still owing a disposition, else the newest ringing call.
  function currentCard() {
    const focused = currentCardIfFocused();
    if (focused) return focused;
    const cards = cardsInOrder();
    return cards.find((c) => c.phase === 'on_call')
      || cards.find(needsDisposition)
      || cards.find((c) => c.phase === 'ringing')
      || cards[0]
      || null;
  }

  function markCurrentCard() {
    const current = currentCard();
    for (const card of state.cards.values()) card.el.classList.toggle('is-current', card === current && state.cards.size > 1);
  }

  function onKeyDown(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (ui.workspace.hidden) return;
    if (event.key === 'Escape') {
      if (onEscape()) event.preventDefault();
      return;
    }
    if (isEditing()) return;
    const key = event.key;
    if (key === 'r' || key === 'R') {
      requestStatus('ready');
    } else if (key === 'a' || key === 'A') {
      requestStatus('away');
    } else if (key === 'd' || key === 'D') {
      const card = currentCard();
      if (!card) return;
      card.refs.code.focus();
    } else if (key === 'n' || key === 'N') {
      const card = currentCard();
      if (!card) return;
      card.refs.note.focus();
    } else if (/^[1-9]$/.test(key)) {
      const card = currentCard();
      if (!card) return;
      selectCandidate(card, Number(key) - 1);
    } else {
      return;
    }
    event.preventDefault();
  }

  // Esc closes a finished card: the focused one if finished, else the newest finished one.
  function onEscape() {
    const focused = currentCardIfFocused();
    const finished = (card) => card.phase !== 'ringing' && card.phase !== 'on_call';
    // Esc inside a live call's card must not close some other card.
    if (focused && !finished(focused)) return false;
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest('.task-card')) {
      const focusedTask = state.tasks.get(document.activeElement.closest('.task-card').dataset.taskId);
      if (focusedTask && (focusedTask.saved || focusedTask.state === 'withdrawn')) {
        removeTask(focusedTask);
        return true;
      }
      return false;
    }
    const card = focused || cardsInOrder().find(finished);
    if (card) {
      dismissCard(card, false);
      return true;
    }
    const doneTask = [...state.tasks.values()].find((t) => t.saved || t.state === 'withdrawn');
    if (doneTask) {
      removeTask(doneTask);
      return true;
    }
    return false;
  }

  function currentCardIfFocused() {
    const el = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest('[data-testid="pop-card"]') : null;
    return el ? state.cards.get(el.dataset.callId) || null : null;
  }

  // ---------------------------------------------------------------- wiring

  function tick() {
    for (const card of state.cards.values()) {
      if (card.phase === 'on_call') renderTimer(card);
    }
    renderReconnectCountdown();
  }

  function init() {
    ui.loginForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const token = ui.tokenInput.value.trim();
      if (!token) {
        ui.loginMessage.textContent = 'Enter your agent token.';
        ui.tokenInput.focus();
        return;
      }
      startSession(token);
    });
    ui.tokenReveal.addEventListener('click', () => {
      const reveal = ui.tokenInput.type === 'password';
      ui.tokenInput.type = reveal ? 'text' : 'password';
      ui.tokenReveal.textContent = reveal ? 'Hide' : 'Show';
      ui.tokenReveal.setAttribute('aria-pressed', String(reveal));
    });
    ui.logout.addEventListener('click', logout);
    ui.retryNow.addEventListener('click', () => {
      state.attempt = 0;
      connect();
    });
    ui.statusToggle.addEventListener('click', () => {
      const shown = state.statusPending || state.status;
      requestStatus(shown === 'ready' ? 'away' : 'ready');
    });
    ui.statusLineClose.addEventListener('click', hideStatusLine);
    ui.newCallPill.addEventListener('click', () => {
      const card = state.cards.get(ui.newCallPill.dataset.callId);
      ui.newCallPill.hidden = true;
      if (!card) return;
      card.el.scrollIntoView({ block: 'start', behavior: 'smooth' });
      card.el.focus({ preventScroll: true });
    });
    window.addEventListener('scroll', hideNewCallPillIfSeen, { passive: true });
    document.addEventListener('keydown', onKeyDown);
    document.addEventListener('focusin', markCurrentCard);
    window.addEventListener('online', () => {
      if (state.wantConnected && state.reconnectTimer) {
        state.attempt = 0;
        connect();
      }
    });
    window.setInterval(tick, 1000);

    const initial = readInitialToken();
    ui.tokenInput.value = initial.token;
    refreshLists();
    if (initial.remembered) {
      // Reloading the page should not sign the agent out.
      startSession(initial.token, { remembered: true });
    } else {
      setConnection('offline', 'signed out');
      showLogin('');
    }
  }

  init();
})();
