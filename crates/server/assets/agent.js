/*
 * Parley agent workspace, "My Sessions" (/agent).
 *
 * One WebSocket (/ws/v1/agent, cookie-authenticated) carries offers, chats and their log entries.
 * Reliability rules as in the widget (docs/protocol.md): per-conversation seq dedupe, an outbox
 * of unacknowledged messages kept in sessionStorage and resent with the same client_msg_id after
 * a reconnect, reconnect with backoff from 250 ms to 5 s (close code 1012 included).
 * Typing signals are ephemeral both ways: typing a reply sends {"type":"typing","conversation_id"}
 * at most every 3 s per chat; the customer's typing shows "Customer is typing…" in that chat for
 * 5 s (until their message).
 * Receipts: a chat's entries are reported {"type":"delivered","conversation_id","seq"} as they
 * arrive and {"type":"read",…} once that chat is on screen (selected, page visible); the
 * customer's receipt frames mark the agent's own messages Sent, Delivered or Read.
 * Files: the attach button uploads to the selected chat (POST /api/v1/agent/chats/{id}/attachments,
 * idempotent per client_msg_id); files in the log are shown from the cookie-authenticated
 * /api/v1/agent/chats/{id}/attachments/{attachment_id}.
 * All server and user data reaches the DOM through textContent only.
 */
(function () {
  'use strict';

  function $(id) {
    return document.getElementById(id);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function formatTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return '';
    try {
      return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    } catch (e) {
      return '';
    }
  }
  function newClientMsgId() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    } catch (e) {
      /* needs a secure context */
    }
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    var hex = '';
    for (var j = 0; j < 16; j++) hex += (bytes[j] + 0x100).toString(16).slice(1);
    return 'm-' + hex;
  }

  // ---- storage ----

  var OUTBOX_KEY = 'parley.agent.outbox';
  var CLOSED_KEY = 'parley.agent.closed';
  function loadJson(k, fallback) {
    try {
      var v = JSON.parse(window.sessionStorage.getItem(k) || 'null');
      return v == null ? fallback : v;
    } catch (e) {
      return fallback;
    }
  }
  function saveJson(k, v) {
    try {
      window.sessionStorage.setItem(k, JSON.stringify(v));
    } catch (e) {
      /* storage unavailable: keep it in memory only */
    }
  }

  // [{conversation_id, client_msg_id, text}] not yet acknowledged
  var outbox = loadJson(OUTBOX_KEY, []);
  if (!Array.isArray(outbox)) outbox = [];
  // conversation ids of ended chats the agent closed, so a reconnect doesn't bring them back
  var closedIds = loadJson(CLOSED_KEY, {});
  if (!closedIds || typeof closedIds !== 'object') closedIds = {};

  function saveOutbox() {
    saveJson(OUTBOX_KEY, outbox);
  }
  function removeFromOutbox(id) {
    var n = outbox.length;
    outbox = outbox.filter(function (m) {
      return m.client_msg_id !== id;
    });
    if (outbox.length !== n) saveOutbox();
  }

  // ---- DOM ----

  var connEl = $('conn');
  var agentNameEl = $('agent-name');
  var presenceSel = $('presence');
  var presenceWrap = presenceSel.parentNode;
  var signOutBtn = $('sign-out');
  var notifyBtn = $('notify');
  var noticeEl = $('notice');
  var offersEl = $('offers');
  var offersEmpty = $('offers-empty');
  var offerCount = $('offer-count');
  var announcer = $('announcer');
  var acw = {
    banner: $('acw-banner'),
    lead: $('acw-lead'),
    remaining: $('acw-remaining'),
    message: $('acw-message'),
    extend: $('acw-extend'),
    end: $('acw-end')
  };
  var rona = { banner: $('rona-banner'), reset: $('rona-reset') };
  var chatsEl = $('chats');
  var chatsEmpty = $('chats-empty');
  var historyEl = $('history');
  var historyEmpty = $('history-empty');
  var paneEmpty = $('pane-empty');
  var paneChat = $('pane-chat');
  var pane = {
    name: paneChat.querySelector('.customer-name'),
    email: paneChat.querySelector('.customer-email'),
    service: paneChat.querySelector('.service-name'),
    status: paneChat.querySelector('.chat-status'),
    end: paneChat.querySelector('.end'),
    close: paneChat.querySelector('.close-tab'),
    firstBox: paneChat.querySelector('.first-message-box'),
    first: paneChat.querySelector('.first-message'),
    details: paneChat.querySelector('.details'),
    logWrap: paneChat.querySelector('.log-wrap'),
    form: paneChat.querySelector('.composer-form'),
    composer: paneChat.querySelector('.composer'),
    send: paneChat.querySelector('.send'),
    typing: el('p', 'typing')
  };
  // "Customer is typing…" for the chat on screen: a polite live region that stays in the page
  // (empty while nobody types). Its text changes only when the indicator appears, so it is
  // announced once, not on every typing frame.
  pane.typing.setAttribute('role', 'status');
  pane.typing.setAttribute('aria-live', 'polite');
  pane.typing.setAttribute('aria-atomic', 'true');
  paneChat.insertBefore(pane.typing, pane.form);

  var wrapUi = {
    box: paneChat.querySelector('.wrap-up'),
    summary: paneChat.querySelector('.wrap-up-summary'),
    primary: paneChat.querySelector('.codes-primary'),
    moreBox: paneChat.querySelector('.more-codes'),
    secondary: paneChat.querySelector('.codes-secondary'),
    tagForm: paneChat.querySelector('.tag-form'),
    tagInput: paneChat.querySelector('.tag-input'),
    tags: paneChat.querySelector('.tags'),
    status: paneChat.querySelector('.wrap-up-status')
  };

  var noticeTimer = null;
  function notice(text) {
    noticeEl.textContent = text;
    noticeEl.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(function () {
      noticeEl.hidden = true;
    }, 6000);
  }

  function setConn(state, text) {
    connEl.dataset.state = state;
    connEl.textContent = text;
  }

  // Polite screen-reader announcement. Clearing first makes a repeated text be read again.
  var announceTimer = null;
  function announce(text) {
    announcer.textContent = '';
    clearTimeout(announceTimer);
    announceTimer = setTimeout(function () {
      announcer.textContent = text;
    }, 100);
  }

  // ---- clock ----
  //
  // Deadlines come from the server's clock; countdowns are drawn with the page's clock, corrected
  // by the offset to the server's HTTP Date header when they disagree by more than its 1 s
  // resolution. The countdown is only a display: the server withdraws offers and ends after-chat
  // work itself. A deadline that is implausible when it arrives (already past, or further away
  // than any setting allows) means the clocks still disagree; then no countdown is shown at all.

  var clockOffset = 0; // server time - page time, in ms
  var MAX_OFFER_MS = 600 * 1000 + 5000; // rona_secs is at most 600
  var MAX_ACW_MS = 3600 * 1000 + 5000; // acw_secs is at most 3600

  function serverNow() {
    return Date.now() + clockOffset;
  }
  function parseTime(iso) {
    var t = iso ? Date.parse(iso) : NaN;
    return isNaN(t) ? null : t;
  }
  function plausible(deadline, max) {
    var left = deadline - serverNow();
    return left > 0 && left <= max;
  }

  function syncClock() {
    var sent = Date.now();
    fetch('/healthz', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        var received = Date.now();
        var date = parseTime(res.headers.get('Date'));
        if (date == null || received - sent > 5000) return;
        // The header is truncated to the second: its middle is the best guess.
        var offset = date + 500 - (sent + received) / 2;
        clockOffset = Math.abs(offset) > 1500 ? offset : 0;
        recheckDeadlines();
      })
      .catch(function () {
        /* keep the page clock */
      });
  }

  function formatLeft(ms) {
    var secs = Math.max(0, Math.ceil(ms / 1000));
    if (secs < 60) return secs + ' s';
    var m = Math.floor(secs / 60);
    var s = secs % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }
  function spokenLeft(ms) {
    var secs = Math.max(0, Math.ceil(ms / 1000));
    if (secs < 60) return secs + (secs === 1 ? ' second' : ' seconds');
    var m = Math.round(secs / 60);
    return m + (m === 1 ? ' minute' : ' minutes');
  }
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // One ticker for every countdown on the page; it runs only while there is one to draw.
  var ticker = null;
  function ensureTicker() {
    if (!ticker) ticker = setInterval(tick, 250);
  }
  function tick() {
    var busy = tickOffers();
    if (tickAcw()) busy = true;
    if (!busy && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  }
  function recheckDeadlines() {
    Object.keys(offers).forEach(function (id) {
      var o = offers[id];
      if (!o.trusted && o.deadline != null) o.trusted = plausible(o.deadline, MAX_OFFER_MS);
    });
    if (routing.acwUntil != null && !routing.acwTrusted) routing.acwTrusted = acwPlausible(routing.acwUntil);
    renderRouting();
    tick();
    ensureTicker();
  }

  // ---- state ----

  var me = null; // {id, display_name}
  var offers = Object.create(null); // conversation_id -> {li, name, deadline, trusted, ...}
  var chats = Object.create(null); // conversation_id -> chat model
  var selectedId = null;

  function updateCounts() {
    var n = offersEl.children.length;
    offersEmpty.hidden = n > 0;
    offerCount.hidden = n === 0;
    offerCount.textContent = String(n);
    chatsEmpty.hidden = chatsEl.children.length > 0;
    var unread = 0;
    Object.keys(chats).forEach(function (id) {
      unread += chats[id].unread;
    });
    var total = n + unread;
    document.title = (total ? '(' + total + ') ' : '') + 'My Sessions · Parley';
  }

  // ---- offers ----

  function customerName(c) {
    return (c && c.display_name) || 'Customer';
  }

  // What the workflow collected about the customer, as name/value pairs (text only).
  function fillDetails(dl, details) {
    dl.textContent = '';
    (Array.isArray(details) ? details : []).forEach(function (d) {
      dl.appendChild(el('dt', null, String((d && d.name) || '')));
      dl.appendChild(el('dd', null, String((d && d.value) || '')));
    });
    dl.hidden = !dl.firstChild;
    return dl;
  }

  function addOffer(o, live) {
    if (!o || !o.conversation_id || offers[o.conversation_id]) return;
    var name = customerName(o.customer);
    var li = el('li', o.direct ? 'offer offer-direct' : 'offer');
    li.dataset.conversationId = o.conversation_id;
    li.setAttribute('aria-label', (o.direct ? 'Personal chat from ' : 'Chat from ') + name);
    var head = el('div', 'offer-head');
    var service = head.appendChild(el('span', 'offer-service', o.service_name || 'Chat'));
    // A personal-snippet chat asks for this agent alone: declining or missing it ends it.
    if (o.direct) service.appendChild(el('span', 'offer-badge', 'For you'));
    var countdown = el('span', 'offer-countdown');
    countdown.setAttribute('role', 'timer');
    head.appendChild(countdown);
    li.appendChild(head);
    var bar = el('div', 'offer-bar');
    bar.setAttribute('aria-hidden', 'true');
    var fill = bar.appendChild(el('span', 'offer-bar-fill'));
    li.appendChild(bar);
    li.appendChild(el('div', 'offer-customer', name));
    if (o.customer && o.customer.email) li.appendChild(el('div', 'offer-email', o.customer.email));
    if (o.first_message) li.appendChild(el('p', 'offer-message', o.first_message));
    if (o.details && o.details.length) li.appendChild(fillDetails(el('dl', 'details offer-details'), o.details));
    var actions = el('div', 'offer-actions');
    var accept = el('button', 'accept btn btn-primary btn-small', 'Accept');
    accept.type = 'button';
    accept.setAttribute('aria-label', 'Accept chat from ' + name);
    var decline = el('button', 'decline btn btn-ghost btn-small', 'Decline');
    decline.type = 'button';
    decline.setAttribute('aria-label', 'Decline chat from ' + name);
    actions.appendChild(accept);
    actions.appendChild(decline);
    li.appendChild(actions);

    var deadline = parseTime(o.deadline);
    var rec = {
      li: li,
      name: name,
      countdown: countdown,
      fill: fill,
      deadline: deadline,
      trusted: deadline != null && plausible(deadline, MAX_OFFER_MS),
      total: deadline != null ? deadline - serverNow() : 0,
      accepting: false
    };
    offers[o.conversation_id] = rec;
    renderOffer(rec);
    offersEl.appendChild(li);
    updateCounts();
    ensureTicker();
    if (live) {
      alertOffer(o);
      announce(
        (o.direct ? 'New personal chat from ' : 'New chat from ') +
          name +
          (o.service_name ? ' in ' + o.service_name : '') +
          (rec.trusted ? '. Answer within ' + spokenLeft(rec.deadline - serverNow()) + '.' : '.')
      );
    }
  }

  // Draws one offer's countdown; returns false once it has run out.
  function renderOffer(rec) {
    if (!rec.trusted) {
      rec.li.classList.remove('urgent');
      rec.li.classList.add('no-deadline');
      setText(rec.countdown, 'Waiting for you');
      return true;
    }
    rec.li.classList.remove('no-deadline');
    var left = rec.deadline - serverNow();
    setText(rec.countdown, formatLeft(left) + ' left');
    rec.countdown.setAttribute('aria-label', spokenLeft(left) + ' left to answer');
    rec.li.classList.toggle('urgent', left <= 10000);
    var share = rec.total > 0 ? Math.max(0, Math.min(1, left / rec.total)) : 0;
    rec.fill.style.transform = 'scaleX(' + share.toFixed(3) + ')';
    return left > 0;
  }

  // Returns whether some offer still counts down.
  function tickOffers() {
    var counting = false;
    Object.keys(offers).forEach(function (id) {
      var rec = offers[id];
      if (renderOffer(rec) || rec.accepting) {
        if (rec.trusted) counting = true;
        return;
      }
      // Out of time: the server hands it to someone else (offer_withdrawn follows).
      removeOffer(id);
      announce('The chat from ' + rec.name + ' was not answered in time.');
    });
    return counting;
  }

  function removeOffer(id) {
    var rec = offers[id];
    if (!rec) return;
    var hadFocus = rec.li.contains(document.activeElement);
    var next = rec.li.nextElementSibling || rec.li.previousElementSibling;
    rec.li.remove();
    delete offers[id];
    updateCounts();
    // Keep keyboard users in the list instead of dropping focus on <body>.
    if (hadFocus) {
      var target = next && next.querySelector('button:not(:disabled)');
      if (target) target.focus();
      else $('offers-title').focus();
    }
  }

  offersEl.addEventListener('click', function (ev) {
    var btn = ev.target.closest('button');
    var li = ev.target.closest('.offer');
    if (!btn || !li) return;
    var id = li.dataset.conversationId;
    if (!ready) {
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    if (btn.classList.contains('accept')) {
      sendFrame({ type: 'accept', conversation_id: id });
      if (offers[id]) offers[id].accepting = true;
      li.classList.add('accepting');
      li.querySelectorAll('button').forEach(function (b) {
        b.disabled = true;
      });
      btn.textContent = 'Accepting…';
    } else if (btn.classList.contains('decline')) {
      sendFrame({ type: 'decline', conversation_id: id });
      removeOffer(id);
    }
  });

  // ---- notifications (all guarded: headless browsers and old ones lack some APIs) ----

  var audioCtx = null;
  function unlockAudio() {
    try {
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      if (!audioCtx) audioCtx = new AC();
      if (audioCtx.state === 'suspended' && audioCtx.resume) audioCtx.resume().catch(function () {});
    } catch (e) {
      audioCtx = null;
    }
  }
  // Audio may only start after a user gesture; create the context on the first one.
  document.addEventListener('pointerdown', unlockAudio, { once: true, capture: true });
  document.addEventListener('keydown', unlockAudio, { once: true, capture: true });

  function beep() {
    try {
      if (!audioCtx || audioCtx.state !== 'running') return;
      var t = audioCtx.currentTime;
      var osc = audioCtx.createOscillator();
      var gain = audioCtx.createGain();
      osc.type = 'sine';
      osc.frequency.setValueAtTime(880, t);
      osc.frequency.setValueAtTime(1175, t + 0.12);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      osc.connect(gain);
      gain.connect(audioCtx.destination);
      osc.start(t);
      osc.stop(t + 0.32);
    } catch (e) {
      /* no sound, no problem */
    }
  }

  function notificationsSupported() {
    try {
      return 'Notification' in window && typeof window.Notification === 'function';
    } catch (e) {
      return false;
    }
  }
  function refreshNotifyButton() {
    notifyBtn.hidden = !(notificationsSupported() && window.Notification.permission === 'default');
  }
  notifyBtn.addEventListener('click', function () {
    unlockAudio();
    try {
      var r = window.Notification.requestPermission(refreshNotifyButton);
      if (r && r.then) r.then(refreshNotifyButton, refreshNotifyButton);
    } catch (e) {
      notifyBtn.hidden = true;
    }
  });
  refreshNotifyButton();

  function alertOffer(o) {
    beep();
    try {
      if (notificationsSupported() && window.Notification.permission === 'granted' && document.hidden) {
        var n = new window.Notification('New chat: ' + (o.service_name || 'Parley'), {
          body: customerName(o.customer) + (o.first_message ? ': ' + o.first_message : ''),
          tag: 'parley-offer-' + o.conversation_id
        });
        n.onclick = function () {
          try {
            window.focus();
            n.close();
          } catch (e) {
            /* ignore */
          }
        };
      }
    } catch (e) {
      /* notifications unavailable */
    }
  }

  // ---- chats ----

  function ensureChat(id) {
    var c = chats[id];
    if (c) return c;
    c = {
      id: id,
      info: { conversation_id: id, customer: {} },
      ended: false,
      lastSeq: 0,
      bySeq: Object.create(null),
      byClientId: Object.create(null),
      unread: 0,
      draft: '',
      typing: false, // the customer typed within the last TYPING_SHOW_MS
      typingTimer: null,
      lastTypingSent: 0, // when we last told the server we type here (Date.now())
      customerMark: { delivered: 0, read: 0 }, // how far the customer has received and read
      sentMark: { delivered: 0, read: 0 }, // what this socket last reported of ours
      seenQueued: false,
      logEl: el('ol', 'log'),
      tabEl: el('li', 'chat-tab')
    };
    c.logEl.setAttribute('role', 'log');
    c.logEl.setAttribute('aria-live', 'polite');
    c.logEl.setAttribute('aria-label', 'Conversation');
    c.tabEl.dataset.conversationId = id;
    chats[id] = c;
    chatsEl.appendChild(c.tabEl);
    // Messages still waiting for an ack (e.g. from before a reload) show up as pending.
    outbox.forEach(function (m) {
      if (m.conversation_id === id) showPending(c, m);
    });
    renderTab(c);
    updateCounts();
    return c;
  }

  function upsertChat(info, select) {
    if (!info || !info.conversation_id) return null;
    var c = ensureChat(info.conversation_id);
    c.info = info;
    if (info.status === 'ended') markChatEnded(c);
    renderTab(c);
    if (select || !selectedId) selectChat(c.id);
    else if (selectedId === c.id) renderPane();
    return c;
  }

  function renderTab(c) {
    var li = c.tabEl;
    li.textContent = '';
    li.classList.toggle('selected', c.id === selectedId);
    li.classList.toggle('ended', c.ended);
    var btn = el('button', 'tab-select');
    btn.type = 'button';
    if (c.id === selectedId) btn.setAttribute('aria-current', 'true');
    var name = customerName(c.info.customer);
    btn.appendChild(el('span', 'tab-name', name));
    btn.appendChild(el('span', 'tab-sub', c.ended ? 'Chat ended' : c.info.service_name || ''));
    var badge = el('span', 'unread', c.unread ? String(c.unread) : '');
    badge.hidden = !c.unread;
    badge.setAttribute('aria-label', c.unread + ' unread');
    btn.appendChild(badge);
    li.appendChild(btn);
    if (c.ended) {
      var close = el('button', 'close-tab', '×');
      close.type = 'button';
      close.setAttribute('aria-label', 'Close chat with ' + name);
      li.appendChild(close);
    }
  }

  chatsEl.addEventListener('click', function (ev) {
    var li = ev.target.closest('.chat-tab');
    if (!li) return;
    var id = li.dataset.conversationId;
    if (ev.target.closest('.close-tab')) closeChat(id);
    else selectChat(id);
  });

  function selectChat(id) {
    var prev = selectedId && chats[selectedId];
    if (prev && prev.id !== id) prev.draft = pane.composer.value;
    selectedId = chats[id] ? id : null;
    Object.keys(chats).forEach(function (k) {
      renderTab(chats[k]);
    });
    var c = chats[id];
    if (c) {
      c.unread = 0;
      renderTab(c);
      pane.composer.value = c.draft || '';
    }
    renderPane();
    updateCounts();
    if (c) reportSeen(c);
    if (c && !c.ended) pane.composer.focus();
  }

  // How the customer reads this agent, when the service's system messages name them otherwise.
  function shownAs(alias) {
    if (alias == null || (me && alias === me.display_name)) return '';
    return alias === '' ? ' · your name is hidden from the customer' : ' · the customer sees you as ' + alias;
  }

  function renderPane() {
    var c = selectedId && chats[selectedId];
    paneEmpty.hidden = !!c;
    paneChat.hidden = !c;
    if (!c) {
      pane.logWrap.textContent = '';
      renderTyping();
      return;
    }
    paneChat.dataset.conversationId = c.id;
    var cust = c.info.customer || {};
    pane.name.textContent = customerName(cust);
    pane.email.textContent = cust.email || '';
    pane.service.textContent = (c.info.service_name || '') + shownAs(c.info.agent_alias);
    pane.first.textContent = c.info.first_message || '';
    pane.first.hidden = !c.info.first_message;
    fillDetails(pane.details, c.info.details);
    pane.firstBox.hidden = !c.info.first_message && !(c.info.details && c.info.details.length);
    pane.status.textContent = c.ended ? 'Chat ended' : 'Connected';
    pane.status.classList.toggle('is-ended', c.ended);
    pane.end.hidden = c.ended;
    pane.end.disabled = !!c.ending;
    pane.close.hidden = !c.ended;
    pane.composer.disabled = c.ended;
    pane.composer.placeholder = c.ended
      ? 'This chat has ended'
      : 'Type a reply… (Enter to send, Shift+Enter for a new line)';
    pane.send.disabled = c.ended;
    paneChat.querySelector('.attach').disabled = c.ended;
    renderWrapUp(c);
    renderTyping();
    if (pane.logWrap.firstChild !== c.logEl) {
      pane.logWrap.textContent = '';
      pane.logWrap.appendChild(c.logEl);
      c.logEl.scrollTop = c.logEl.scrollHeight;
    }
  }

  // ---- codes and tags: the chat's wrap-up, kept on the server as a whole ----

  var MAX_TAGS = 20;

  function wrapOf(c) {
    if (!c.wrap) c.wrap = { state: 'new', primary: [], secondary: [], retired: [], codes: [], tags: [], version: 0 };
    return c.wrap;
  }

  function setWrapStatus(text) {
    wrapUi.status.textContent = text || '';
  }

  function loadWrapUp(c) {
    var w = wrapOf(c);
    if (w.state !== 'new' && w.state !== 'failed') return;
    w.state = 'loading';
    fetch('/api/v1/agent/chats/' + encodeURIComponent(c.id) + '/wrap-up', {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    })
      .then(function (res) {
        if (!res.ok) throw new Error('status ' + res.status);
        return res.json();
      })
      .then(function (v) {
        w.state = 'loaded';
        w.primary = Array.isArray(v.primary) ? v.primary : [];
        w.secondary = Array.isArray(v.secondary) ? v.secondary : [];
        w.retired = Array.isArray(v.retired) ? v.retired : [];
        if (v.wrap_up && w.version === 0) {
          w.codes = Array.isArray(v.wrap_up.codes) ? v.wrap_up.codes.map(String) : [];
          w.tags = Array.isArray(v.wrap_up.tags) ? v.wrap_up.tags.map(String) : [];
        }
        if (selectedId === c.id) renderWrapUp(c);
      })
      .catch(function () {
        w.state = 'failed';
        if (selectedId === c.id) setWrapStatus('Codes and tags could not be loaded.');
      });
  }

  function codeButton(w, code) {
    var on = w.codes.indexOf(String(code.id)) >= 0;
    var b = el('button', 'code' + (on ? ' is-on' : ''), String(code.name || ''));
    b.type = 'button';
    b.dataset.codeId = String(code.id);
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
    if (code.description) b.title = String(code.description);
    return b;
  }

  function renderWrapUp(c) {
    var w = wrapOf(c);
    loadWrapUp(c);
    wrapUi.primary.textContent = '';
    wrapUi.secondary.textContent = '';
    // Codes the chat keeps though its service no longer offers them: shown (pressed) until
    // the agent lets them go, so a save never carries a code nobody can see.
    w.primary.concat(w.retired.filter(function (code) {
      return w.codes.indexOf(String(code.id)) >= 0;
    })).forEach(function (code) {
      wrapUi.primary.appendChild(codeButton(w, code));
    });
    w.secondary.forEach(function (code) {
      wrapUi.secondary.appendChild(codeButton(w, code));
    });
    wrapUi.primary.hidden = !wrapUi.primary.firstChild;
    wrapUi.moreBox.hidden = w.secondary.length === 0;
    wrapUi.tags.textContent = '';
    w.tags.forEach(function (tag) {
      var li = el('li', 'tag');
      li.appendChild(el('span', 'tag-text', tag));
      var x = el('button', 'tag-remove', '×');
      x.type = 'button';
      x.dataset.tag = tag;
      x.setAttribute('aria-label', 'Remove tag ' + tag);
      li.appendChild(x);
      wrapUi.tags.appendChild(li);
    });
    var n = w.codes.length;
    var parts = [];
    if (n) parts.push(n + (n === 1 ? ' code' : ' codes'));
    if (w.tags.length) parts.push(w.tags.length + (w.tags.length === 1 ? ' tag' : ' tags'));
    wrapUi.summary.textContent = parts.length ? '· ' + parts.join(', ') : '';
    wrapUi.tagInput.disabled = w.tags.length >= MAX_TAGS;
    setWrapStatus(w.message || '');
  }

  // One save at a time, each with the whole wrap-up as it is then: a later change waits and
  // goes out next, so the server never ends with an older state than the page shows.
  function saveWrapUp(c) {
    var w = wrapOf(c);
    w.version += 1;
    w.message = 'Saving…';
    renderWrapUp(c);
    if (w.saving) return;
    putWrapUp(c);
  }

  function putWrapUp(c) {
    var w = wrapOf(c);
    var version = w.version;
    w.saving = true;
    fetch('/api/v1/agent/chats/' + encodeURIComponent(c.id) + '/wrap-up', {
      method: 'PUT',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
      body: JSON.stringify({ codes: w.codes, tags: w.tags })
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error((body && body.detail) || 'not saved');
          return body;
        });
      })
      .then(function (saved) {
        w.saving = false;
        if (version !== w.version) {
          putWrapUp(c);
          return;
        }
        w.codes = (saved.codes || []).map(String);
        w.tags = (saved.tags || []).map(String);
        w.message = 'Saved';
        if (selectedId === c.id) renderWrapUp(c);
        scheduleHistory();
      })
      .catch(function (e) {
        w.saving = false;
        if (version !== w.version) {
          putWrapUp(c);
          return;
        }
        w.message = 'Not saved: ' + String((e && e.message) || 'please try again');
        if (selectedId === c.id) renderWrapUp(c);
      });
  }

  function onCodeClick(ev) {
    var b = ev.target.closest('button.code');
    var c = selectedId && chats[selectedId];
    if (!b || !c) return;
    var w = wrapOf(c);
    var id = b.dataset.codeId;
    var at = w.codes.indexOf(id);
    if (at >= 0) w.codes.splice(at, 1);
    else w.codes.push(id);
    saveWrapUp(c);
  }
  wrapUi.primary.addEventListener('click', onCodeClick);
  wrapUi.secondary.addEventListener('click', onCodeClick);

  wrapUi.tagForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var c = selectedId && chats[selectedId];
    if (!c) return;
    var w = wrapOf(c);
    var tag = wrapUi.tagInput.value.replace(/\s+/g, ' ').trim();
    wrapUi.tagInput.value = '';
    if (!tag) return;
    var known = w.tags.some(function (t) {
      return t.toLowerCase() === tag.toLowerCase();
    });
    if (known || w.tags.length >= MAX_TAGS) return;
    w.tags.push(tag);
    saveWrapUp(c);
    wrapUi.tagInput.focus();
  });

  wrapUi.tags.addEventListener('click', function (ev) {
    var b = ev.target.closest('button.tag-remove');
    var c = selectedId && chats[selectedId];
    if (!b || !c) return;
    var w = wrapOf(c);
    w.tags = w.tags.filter(function (t) {
      return t !== b.dataset.tag;
    });
    saveWrapUp(c);
    wrapUi.tagInput.focus();
  });

  // ---- history: the agent's recent chats with their outcome, codes and tags ----

  var OUTCOMES = {
    user_accepted: ['Handled', 'good'],
    customer_hangup_before_accept: ['Customer left', 'warn'],
    customer_hangup_in_ivr: ['Customer left', 'warn'],
    customer_hangup_in_queue: ['Customer left', 'warn'],
    customer_hangup_in_ivr_after_queue: ['Customer left', 'warn'],
    handled_by_system: ['Closed by the system', 'neutral'],
    cancelled: ['Cancelled', 'warn'],
    abandoned: ['Abandoned', 'warn'],
    failed: ['Failed', 'bad'],
    declined: ['Declined', 'bad'],
    missed: ['Missed', 'bad']
  };

  var historyTimer = null;
  function scheduleHistory() {
    clearTimeout(historyTimer);
    historyTimer = setTimeout(loadHistory, 300);
  }

  function loadHistory() {
    fetch('/api/v1/agent/history', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('status ' + res.status);
        return res.json();
      })
      .then(renderHistory)
      .catch(function () {
        /* kept as it was; the next change asks again */
      });
  }

  function renderHistory(items) {
    historyEl.textContent = '';
    var shown = (Array.isArray(items) ? items : []).filter(function (h) {
      return h && h.status === 'ended';
    });
    shown.forEach(function (h) {
      var o = OUTCOMES[h.outcome] || ['Ended', 'neutral'];
      var li = el('li', 'history-item outcome-' + o[1]);
      li.dataset.conversationId = String(h.conversation_id);
      li.dataset.outcome = String(h.outcome || '');
      var head = el('div', 'history-head');
      head.appendChild(el('span', 'history-name', String(h.customer_name || 'Customer')));
      var badge = el('span', 'outcome-badge', o[0]);
      head.appendChild(badge);
      li.appendChild(head);
      var sub = (h.direct ? 'Personal chat' : String(h.service_name || '')) + ' · ' + formatTime(h.ended_at || h.created_at);
      li.appendChild(el('div', 'history-sub', sub));
      var marks = (h.codes || []).concat(h.tags || []);
      if (marks.length) {
        var ul = el('ul', 'history-marks');
        marks.forEach(function (m) {
          ul.appendChild(el('li', 'history-mark', String(m)));
        });
        li.appendChild(ul);
      }
      historyEl.appendChild(li);
    });
    historyEmpty.hidden = shown.length > 0;
  }

  function markChatEnded(c) {
    if (c.ended) return;
    c.ended = true;
    hideCustomerTyping(c);
    c.ending = false;
    c.info.status = 'ended';
    outbox.forEach(function (m) {
      if (m.conversation_id !== c.id) return;
      var li = c.byClientId[m.client_msg_id];
      if (li && !li.dataset.seq) markFailed(li);
    });
    outbox = outbox.filter(function (m) {
      return m.conversation_id !== c.id;
    });
    saveOutbox();
    renderTab(c);
    if (selectedId === c.id) renderPane();
    scheduleHistory();
  }

  function closeChat(id) {
    var c = chats[id];
    if (!c || !c.ended) return;
    clearTimeout(c.typingTimer);
    c.tabEl.remove();
    delete chats[id];
    closedIds[id] = true;
    saveJson(CLOSED_KEY, closedIds);
    if (selectedId === id) {
      selectedId = null;
      var next = chatsEl.querySelector('.chat-tab');
      if (next) selectChat(next.dataset.conversationId);
      else renderPane();
    }
    updateCounts();
  }

  pane.close.addEventListener('click', function () {
    if (selectedId) closeChat(selectedId);
  });
  pane.end.addEventListener('click', function () {
    var c = selectedId && chats[selectedId];
    if (!c || c.ended) return;
    if (!ready) {
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    sendFrame({ type: 'end', conversation_id: c.id });
    c.ending = true;
    pane.end.disabled = true;
  });

  // ---- log entries ----

  // Confirmed entries stay in seq order; pending (no seq yet) ones stay after them.
  function place(log, li, seq) {
    var node = log.lastElementChild;
    while (node && (node === li || !node.dataset.seq || Number(node.dataset.seq) > seq)) {
      node = node.previousElementSibling;
    }
    log.insertBefore(li, node ? node.nextElementSibling : log.firstElementChild);
  }

  // `iso` is the entry's created_at; pending messages have none yet.
  function messageLi(kind, name, text, iso) {
    var li = el('li', 'entry ' + kind);
    var meta = el('div', 'meta');
    meta.appendChild(el('span', 'name', name));
    li.appendChild(meta);
    li.appendChild(ParleyText.render(el('p', 'text'), text));
    if (iso !== '') setTime(li, iso);
    return li;
  }
  // The server's timestamp wins over the local one shown at ack time.
  function setTime(li, iso) {
    var meta = li.querySelector('.meta');
    var t = meta && meta.querySelector('time');
    if (!meta) return;
    if (!t) t = meta.appendChild(el('time', 'time'));
    t.textContent = formatTime(iso);
    if (iso) t.dateTime = String(iso);
  }

  function setDeliveryState(li, text) {
    var s = li.querySelector('.state');
    if (!text) {
      if (s) s.remove();
      return;
    }
    if (!s) {
      s = el('span', 'state');
      li.appendChild(s);
    }
    s.textContent = text;
  }
  function markFailed(li, why) {
    li.classList.remove('pending');
    li.classList.add('failed');
    setDeliveryState(li, why || 'Not delivered');
  }

  function eventText(ev) {
    switch (ev && ev.type) {
      case 'accepted':
        return 'Chat started';
      case 'queued':
        return 'Customer entered the queue';
      case 'connected':
        return (ev.agent_name || 'An agent') + ' joined';
      case 'transferred':
        return 'Transferred to another service';
      case 'ended':
        return (
          'The chat has ended' +
          (ev.by === 'customer' ? ' (by the customer)' : ev.by === 'agent' ? ' (by the agent)' : '')
        );
      default:
        return '';
    }
  }

  function isMine(entry) {
    return (
      entry.kind === 'message' &&
      entry.sender &&
      entry.sender.role === 'agent' &&
      me &&
      String(entry.sender.id) === String(me.id)
    );
  }

  function buildEntry(c, entry) {
    if (entry.kind === 'event') {
      return el('li', 'entry event event-' + ((entry.event && entry.event.type) || 'other'), eventText(entry.event));
    }
    var s = entry.sender || {};
    var time = entry.created_at || null;
    var li;
    if (s.role === 'customer') li = messageLi('msg-customer', s.name || customerName(c.info.customer), entry.text, time);
    else if (s.role === 'agent') li = messageLi('msg-agent' + (isMine(entry) ? ' mine' : ''), s.name || 'Agent', entry.text, time);
    else li = messageLi('msg-system', c.info.service_name || 'System', entry.text, time);
    if (entry.attachment) showAttachment(c, li, entry.attachment);
    return li;
  }

  // ---- files ----

  function showAttachment(c, li, att) {
    if (li.querySelector('a.file')) return;
    var pending = li.querySelector('.file');
    if (pending) pending.remove();
    li.classList.add('has-file');
    var url =
      '/api/v1/agent/chats/' + encodeURIComponent(c.id) + '/attachments/' + encodeURIComponent(String(att.id));
    li.insertBefore(
      ParleyText.attachment(att, function () {
        return Promise.resolve(url);
      }),
      li.querySelector('.state')
    );
  }

  function sendFile(c, file) {
    if (!c || c.ended || !file) return;
    var id = newClientMsgId();
    var li = messageLi('msg-agent mine pending', (me && me.display_name) || 'You', '', '');
    li.dataset.clientMsgId = id;
    li.classList.add('has-file');
    var chip = el('span', 'file file-doc');
    chip.appendChild(el('span', 'file-name', file.name));
    chip.appendChild(el('span', 'file-size', ParleyText.formatSize(file.size)));
    li.appendChild(chip);
    setDeliveryState(li, 'Uploading…');
    c.byClientId[id] = li;
    c.logEl.appendChild(li);
    c.logEl.scrollTop = c.logEl.scrollHeight;
    var path =
      '/api/v1/agent/chats/' + encodeURIComponent(c.id) + '/attachments?client_msg_id=' + encodeURIComponent(id) +
      '&name=' + encodeURIComponent(file.name);
    fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: file,
      credentials: 'same-origin'
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error((body && body.detail) || 'The file was not sent');
          return body;
        });
      })
      .then(function (body) {
        showAttachment(c, li, body.attachment);
        onAck({ conversation_id: c.id, client_msg_id: id, seq: body.seq, duplicate: body.duplicate });
      })
      .catch(function (e) {
        markFailed(li, String((e && e.message) || 'The file was not sent'));
      });
  }

  var fileInput = paneChat.querySelector('.file-input');
  paneChat.querySelector('.attach').addEventListener('click', function () {
    fileInput.click();
  });
  fileInput.addEventListener('change', function () {
    var c = selectedId && chats[selectedId];
    Array.prototype.forEach.call(fileInput.files || [], function (f) {
      sendFile(c, f);
    });
    fileInput.value = '';
  });

  function renderEntry(c, entry, live) {
    var seq = Number(entry && entry.seq);
    if (!(seq > 0) || seq <= c.lastSeq) return;
    var own = isMine(entry) && entry.client_msg_id;
    var li = c.bySeq[seq] || (own ? c.byClientId[entry.client_msg_id] : null);
    if (li) {
      li.classList.remove('pending', 'failed');
      setTime(li, entry.created_at);
      if (entry.attachment) showAttachment(c, li, entry.attachment);
    } else {
      li = buildEntry(c, entry);
      if (own) c.byClientId[entry.client_msg_id] = li;
    }
    li.dataset.seq = String(seq);
    c.bySeq[seq] = li;
    if (own) setReceipt(c, li);
    scheduleSeen(c);
    var log = c.logEl;
    var nearEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    place(log, li, seq);
    c.lastSeq = seq;
    if (own) removeFromOutbox(entry.client_msg_id);
    if (nearEnd || own) log.scrollTop = log.scrollHeight;

    if (entry.kind === 'message' && entry.sender && entry.sender.role === 'customer') hideCustomerTyping(c);
    if (entry.kind === 'event' && entry.event && entry.event.type === 'ended') markChatEnded(c);
    if (live && entry.kind === 'message' && entry.sender && entry.sender.role === 'customer') {
      if (c.id !== selectedId) {
        c.unread += 1;
        renderTab(c);
        updateCounts();
      }
    }
  }

  // ---- typing ----

  var TYPING_SHOW_MS = 5000; // the customer's typing shows this long after their last typing frame
  var TYPING_EVERY_MS = 3000; // our own typing is signalled at most this often per chat

  function showCustomerTyping(c) {
    if (c.ended) return;
    c.typing = true;
    clearTimeout(c.typingTimer);
    c.typingTimer = setTimeout(function () {
      hideCustomerTyping(c);
    }, TYPING_SHOW_MS);
    if (c.id === selectedId) renderTyping();
  }

  function hideCustomerTyping(c) {
    clearTimeout(c.typingTimer);
    c.typingTimer = null;
    if (!c.typing) return;
    c.typing = false;
    if (c.id === selectedId) renderTyping();
  }

  function renderTyping() {
    var c = selectedId && chats[selectedId];
    var text = c && c.typing && !c.ended ? 'Customer is typing…' : '';
    // Unchanged text is not announced again.
    if (pane.typing.textContent !== text) pane.typing.textContent = text;
  }

  pane.composer.addEventListener('input', function () {
    var c = selectedId && chats[selectedId];
    if (!c || c.ended || !ready || !pane.composer.value.trim()) return;
    var now = Date.now();
    if (now - c.lastTypingSent < TYPING_EVERY_MS) return;
    c.lastTypingSent = now;
    sendFrame({ type: 'typing', conversation_id: c.id });
  });

  // ---- sending ----

  function showPending(c, m) {
    var li = messageLi('msg-agent mine pending', (me && me.display_name) || 'You', m.text, '');
    li.dataset.clientMsgId = m.client_msg_id;
    setDeliveryState(li, 'Sending…');
    c.byClientId[m.client_msg_id] = li;
    c.logEl.appendChild(li);
    c.logEl.scrollTop = c.logEl.scrollHeight;
  }

  function sendMessage() {
    var c = selectedId && chats[selectedId];
    if (!c || c.ended) return;
    var text = pane.composer.value;
    if (!text.trim()) return;
    var m = { conversation_id: c.id, client_msg_id: newClientMsgId(), text: text };
    outbox.push(m);
    saveOutbox();
    showPending(c, m);
    pane.composer.value = '';
    c.draft = '';
    c.lastTypingSent = 0; // typing on after a message is news again
    if (ready) sendFrame({ type: 'send', conversation_id: m.conversation_id, client_msg_id: m.client_msg_id, text: m.text });
  }

  pane.form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    sendMessage();
    pane.composer.focus();
  });
  pane.composer.addEventListener('keydown', function (ev) {
    // Enter sends, Shift+Enter is a newline; leave IME composition alone.
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendMessage();
    }
  });

  function onAck(f) {
    removeFromOutbox(f.client_msg_id);
    var c = chats[f.conversation_id];
    var li = c && c.byClientId[f.client_msg_id];
    if (!li) return;
    li.classList.remove('pending');
    var seq = Number(f.seq);
    if (seq > 0 && !li.dataset.seq) {
      // The entry frame may come later (or only in a replay); it confirms this <li> in place.
      li.dataset.seq = String(seq);
      c.bySeq[seq] = li;
      place(c.logEl, li, seq);
      if (!li.querySelector('time')) setTime(li, null);
    }
    if (li.dataset.seq) setReceipt(c, li);
  }

  // ---- receipts ----

  function receiptText(c, seq) {
    if (seq <= c.customerMark.read) return 'Read';
    if (seq <= c.customerMark.delivered) return 'Delivered';
    return 'Sent';
  }

  // An acknowledged message of ours: Sent, Delivered or Read as the customer's marks say.
  function setReceipt(c, li) {
    var seq = Number(li.dataset.seq);
    if (!(seq > 0) || li.classList.contains('failed')) return;
    var text = receiptText(c, seq);
    if (li.dataset.receipt === text) return;
    li.dataset.receipt = text;
    setDeliveryState(li, text);
  }

  function onReceipt(f) {
    var c = f.reader === 'customer' && chats[f.conversation_id];
    if (!c) return;
    c.customerMark.delivered = Math.max(c.customerMark.delivered, Number(f.delivered_seq) || 0);
    c.customerMark.read = Math.max(c.customerMark.read, Number(f.read_seq) || 0);
    var own = c.logEl.querySelectorAll('.msg-agent.mine[data-seq]');
    for (var i = 0; i < own.length; i++) setReceipt(c, own[i]);
  }

  // A replay renders many entries at once: report once after the burst.
  function scheduleSeen(c) {
    if (c.seenQueued) return;
    c.seenQueued = true;
    setTimeout(function () {
      c.seenQueued = false;
      reportSeen(c);
    }, 0);
  }

  function reportSeen(c) {
    if (!ready || !c || !(c.lastSeq > 0) || closedIds[c.id]) return;
    var seq = c.lastSeq;
    if (c.id === selectedId && document.visibilityState === 'visible') {
      if (seq <= c.sentMark.read) return;
      c.sentMark.read = c.sentMark.delivered = seq;
      sendFrame({ type: 'read', conversation_id: c.id, seq: seq });
    } else if (seq > c.sentMark.delivered) {
      c.sentMark.delivered = seq;
      sendFrame({ type: 'delivered', conversation_id: c.id, seq: seq });
    }
  }

  document.addEventListener('visibilitychange', function () {
    if (selectedId) reportSeen(chats[selectedId]);
  });

  function onError(f) {
    if (!f.conversation_id && onRoutingError(f)) return;
    if (!f.conversation_id && presencePending) {
      presencePending = false;
      setPresence(presence);
    }
    var c = f.conversation_id && chats[f.conversation_id];
    if (f.client_msg_id) {
      removeFromOutbox(f.client_msg_id);
      var li = c && c.byClientId[f.client_msg_id];
      if (li && !li.dataset.seq) markFailed(li, 'Not delivered: ' + (f.message || f.code || 'error'));
    }
    if (f.code === 'conversation_ended' && c) markChatEnded(c);
    if (f.conversation_id && offers[f.conversation_id]) removeOffer(f.conversation_id);
    if (c && c.ending) {
      c.ending = false;
      if (selectedId === c.id) renderPane();
    }
    notice(f.message || 'Something went wrong (' + (f.code || 'error') + ').');
  }

  // ---- presence ----

  var presence = 'offline';
  var presencePending = false; // a change was sent and not yet echoed
  function setPresence(p) {
    if (!p) return;
    presencePending = false;
    presence = String(p);
    presenceSel.value = presence;
    presenceWrap.dataset.presence = presence;
  }
  presenceSel.addEventListener('change', function () {
    if (!ready) {
      presenceSel.value = presence;
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    // The server echoes the presence now in force; until then show the choice.
    presenceWrap.dataset.presence = presenceSel.value;
    presencePending = true;
    sendFrame({ type: 'presence', presence: presenceSel.value });
  });

  // ---- after-chat work and RONA ----

  var routing = { acwUntil: null, acwTrusted: false, extensions: 0, rona: false };

  // Buttons waiting for the server's answer. aria-disabled rather than disabled, so a keyboard
  // user keeps the focus on the button they pressed.
  function setBusy(btn, busy) {
    if (busy) btn.setAttribute('aria-disabled', 'true');
    else btn.removeAttribute('aria-disabled');
  }
  function isBusy(btn) {
    return btn.getAttribute('aria-disabled') === 'true';
  }

  function acwPlausible(until) {
    // After a reconnect the period may be about to end: a moment in the past is still fine.
    var left = until - serverNow();
    return left > -5000 && left <= MAX_ACW_MS;
  }

  function setRouting(r, live) {
    if (!r || typeof r !== 'object') return;
    var wasAcw = routing.acwUntil != null;
    var wasRona = routing.rona;
    var until = parseTime(r.acw_until);
    var extended = until != null && Number(r.acw_extensions) > routing.extensions;
    if (until !== routing.acwUntil) {
      routing.acwUntil = until;
      routing.acwTrusted = until != null && acwPlausible(until);
    }
    routing.extensions = Number(r.acw_extensions) || 0;
    routing.rona = !!r.rona;
    setBusy(acw.end, false);
    setBusy(acw.extend, false);
    setBusy(rona.reset, false);
    if (!wasAcw || until == null) setText(acw.message, '');
    renderRouting();
    ensureTicker();
    if (!live) return;
    var left = routing.acwTrusted ? ' ' + spokenLeft(until - serverNow()) + ' left.' : '';
    if (until != null && !wasAcw) announce('After-chat work started.' + left);
    else if (extended) announce('After-chat work extended.' + left);
    else if (until == null && wasAcw) announce('After-chat work ended. New chats can come in.');
    if (routing.rona && !wasRona) announce('You missed an offer. No new chats until you are ready.');
    else if (!routing.rona && wasRona) announce('You are ready again. New chats can come in.');
  }

  function renderRouting() {
    // A banner that goes away while one of its buttons has the focus hands it to the offers,
    // where the next chat will appear.
    var active = document.activeElement;
    var hadFocus =
      (routing.acwUntil == null && acw.banner.contains(active)) || (!routing.rona && rona.banner.contains(active));
    acw.banner.hidden = routing.acwUntil == null;
    rona.banner.hidden = !routing.rona;
    if (hadFocus) $('offers-title').focus();
    tickAcw();
  }

  // Draws the after-chat work countdown; returns whether it still counts down.
  function tickAcw() {
    if (routing.acwUntil == null) return false;
    if (!routing.acwTrusted) {
      setText(acw.lead, 'Wrap up your notes. New chats resume when after-chat work ends.');
      setText(acw.remaining, '');
      acw.remaining.hidden = true;
      return false;
    }
    var left = routing.acwUntil - serverNow();
    acw.remaining.hidden = false;
    if (left > 0) {
      setText(acw.lead, 'Wrap up your notes. New chats resume in');
      setText(acw.remaining, formatLeft(left));
      acw.remaining.setAttribute('aria-label', spokenLeft(left));
      return true;
    }
    // The server ends it; until it says so, say what is about to happen.
    setText(acw.lead, 'Wrapping up. New chats resume in a moment.');
    setText(acw.remaining, '');
    acw.remaining.hidden = true;
    return false;
  }

  acw.end.addEventListener('click', function () {
    if (isBusy(acw.end)) return;
    if (!ready) {
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    setBusy(acw.end, true);
    setText(acw.message, '');
    sendFrame({ type: 'end_acw' });
  });
  acw.extend.addEventListener('click', function () {
    if (isBusy(acw.extend)) return;
    if (!ready) {
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    setBusy(acw.extend, true);
    setText(acw.message, '');
    sendFrame({ type: 'extend_acw' });
  });
  rona.reset.addEventListener('click', function () {
    if (isBusy(rona.reset)) return;
    if (!ready) {
      notice('Not connected. Please wait a moment and try again.');
      return;
    }
    setBusy(rona.reset, true);
    sendFrame({ type: 'reset_rona' });
    // The server answers with a routing frame; should nothing change, allow another try.
    setTimeout(function () {
      setBusy(rona.reset, false);
    }, 5000);
  });

  // Refusals of the after-chat work buttons, in words; true when handled.
  function onRoutingError(f) {
    // Whatever was refused, the buttons work again.
    setBusy(acw.extend, false);
    setBusy(acw.end, false);
    setBusy(rona.reset, false);
    if (f.code === 'acw_extension_limit') {
      setText(acw.message, 'You have used every extension this service allows. Use End now when you are done.');
      return true;
    }
    if (f.code === 'not_in_acw') {
      if (routing.acwUntil == null) {
        notice('After-chat work has already ended.');
      } else {
        setText(acw.message, 'After-chat work has already ended.');
      }
      return true;
    }
    return false;
  }

  // ---- sign out ----

  signOutBtn.addEventListener('click', function () {
    stopped = true;
    clearTimeout(retryTimer);
    if (ws) {
      try {
        ws.close(1000);
      } catch (e) {
        /* ignore */
      }
    }
    signOutBtn.disabled = true;
    try {
      window.sessionStorage.removeItem(OUTBOX_KEY);
      window.sessionStorage.removeItem(CLOSED_KEY);
    } catch (e) {
      /* ignore */
    }
    fetch('/api/v1/agent/logout', { method: 'POST', credentials: 'same-origin' })
      .catch(function () {})
      .then(function () {
        location.href = '/agent/login';
      });
  });

  // ---- WebSocket ----

  var ws = null;
  var ready = false; // hello received on the current socket
  var stopped = false;
  var backoff = 250;
  var closesBeforeHello = 0;
  var retryTimer = null;

  function sendFrame(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function connect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var sock;
    try {
      sock = new WebSocket(proto + '//' + location.host + '/ws/v1/agent');
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    ready = false;
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      var f;
      try {
        f = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      handleFrame(f);
    };
    sock.onclose = function () {
      if (sock !== ws) return;
      ws = null;
      if (!ready) closesBeforeHello++;
      ready = false;
      presenceSel.disabled = true;
      if (stopped) return;
      setConn('reconnecting', 'Reconnecting…');
      if (closesBeforeHello >= 2) checkSessionThenReconnect();
      else scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  }

  // The socket closed twice before `hello`. Browsers hide the upgrade's HTTP status, so ask the
  // API whether the session is still valid; a server that is merely down means "keep trying".
  function checkSessionThenReconnect() {
    fetch('/api/v1/agent/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403 || res.status === 404) {
          stopped = true;
          location.href = '/agent/login';
        } else {
          scheduleReconnect();
        }
      })
      .catch(scheduleReconnect);
  }

  function onHello(f) {
    ready = true;
    backoff = 250;
    closesBeforeHello = 0;
    setConn('online', 'Online');
    me = f.user || me;
    agentNameEl.textContent = (me && me.display_name) || '';
    presenceSel.disabled = false;
    scheduleHistory();
    setPresence(f.presence);
    setRouting(f.routing || { acw_until: null, acw_extensions: 0, rona: false }, false);
    syncClock();

    // Offers: the hello list is the truth.
    Object.keys(offers).forEach(removeOffer);
    (Array.isArray(f.offers) ? f.offers : []).forEach(function (o) {
      addOffer(o, false);
    });

    // Chats: add or refresh; a local open chat the server no longer lists ended meanwhile.
    var listed = Object.create(null);
    (Array.isArray(f.chats) ? f.chats : []).forEach(function (info) {
      if (!info || !info.conversation_id || closedIds[info.conversation_id]) return;
      listed[info.conversation_id] = true;
      upsertChat(info, false);
    });
    Object.keys(chats).forEach(function (id) {
      var c = chats[id];
      c.ending = false;
      // A report sent as the last socket closed may be lost; the server ignores repeats.
      c.sentMark = { delivered: 0, read: 0 };
      scheduleSeen(c);
      if (!listed[id]) markChatEnded(c);
    });
    if (!selectedId) {
      var first = chatsEl.querySelector('.chat-tab');
      if (first) selectChat(first.dataset.conversationId);
    }
    renderPane();

    // Resend unacknowledged messages with their original ids; drop those for unknown chats.
    outbox = outbox.filter(function (m) {
      return chats[m.conversation_id] && !chats[m.conversation_id].ended;
    });
    saveOutbox();
    outbox.forEach(function (m) {
      sendFrame({ type: 'send', conversation_id: m.conversation_id, client_msg_id: m.client_msg_id, text: m.text });
    });
  }

  // An item's "messages to user": a line only this agent sees, on the offer or in the chat.
  function onNotice(f) {
    var text = String(f.text || '');
    var id = f.conversation_id;
    if (!text || !id) return;
    var offer = offers[id];
    if (offer) {
      offer.li.insertBefore(el('p', 'offer-note', text), offer.li.querySelector('.offer-actions'));
      return;
    }
    var c = chats[id];
    if (c && !closedIds[id]) {
      // Placed after the entries seen so far; later entries go below it.
      var at = c.lastSeq + 0.5;
      var li = el('li', 'entry note', text);
      li.setAttribute('role', 'note');
      li.dataset.seq = String(at);
      place(c.logEl, li, at);
      c.logEl.scrollTop = c.logEl.scrollHeight;
      return;
    }
    notice(text);
    announce(text);
  }

  function handleFrame(f) {
    switch (f && f.type) {
      case 'hello':
        onHello(f);
        break;
      case 'offer':
        addOffer(f.offer, true);
        break;
      case 'offer_withdrawn':
        removeOffer(f.conversation_id);
        // A personal chat that was declined or missed shows in the history.
        scheduleHistory();
        break;
      case 'chat':
        if (f.chat) {
          removeOffer(f.chat.conversation_id);
          var isNew = !chats[f.chat.conversation_id];
          if (closedIds[f.chat.conversation_id] && f.chat.status !== 'ended') delete closedIds[f.chat.conversation_id];
          if (!closedIds[f.chat.conversation_id]) upsertChat(f.chat, isNew);
        }
        break;
      case 'entry':
        if (f.entry) {
          var id = f.conversation_id || f.entry.conversation_id;
          if (!id || closedIds[id]) break;
          renderEntry(ensureChat(id), f.entry, true);
        }
        break;
      case 'ack':
        onAck(f);
        break;
      case 'receipt':
        onReceipt(f);
        break;
      case 'typing':
        if (f.who === 'customer' && f.conversation_id && chats[f.conversation_id]) {
          showCustomerTyping(chats[f.conversation_id]);
        }
        break;
      case 'presence':
        setPresence(f.presence);
        break;
      case 'routing':
        setRouting(f.routing, true);
        break;
      case 'notice':
        onNotice(f);
        break;
      case 'error':
        onError(f);
        break;
      default:
        break;
    }
  }

  window.addEventListener('online', function () {
    if (!ws && !stopped) {
      backoff = 250;
      connect();
    }
  });

  updateCounts();
  connect();
})();
