/*
 * Parley chat widget: the page inside the iframe (/widget/frame).
 *
 * Flow: pre-chat form → POST /api/v1/widget/conversations → WebSocket /ws/v1/visitor.
 * Reliability rules (see docs/protocol.md):
 *  - every log entry is shown once: anything with seq <= lastSeq is ignored;
 *  - each message gets a client_msg_id and stays in the outbox (sessionStorage) until acked;
 *    after a reconnect the outbox is resent with the same ids, the server deduplicates;
 *  - reconnects back off from 250 ms to 5 s, close code 1012 (server restart) included.
 * Typing signals are ephemeral both ways: typing in the composer sends {"type":"typing"} at most
 * every 3 s; an agent's typing frame shows "<Agent> is typing…" for 5 s (until their message).
 * Receipts: entries that arrive are reported {"type":"delivered","seq"}, and {"type":"read","seq"}
 * once the chat is on screen (page visible, widget open); the agent side's receipt frames mark
 * the visitor's own messages Sent, Delivered or Read.
 * Files: the attach button uploads the chosen file with the visitor token (POST …/attachments,
 * idempotent per client_msg_id); files in the log are fetched with the token and shown through
 * object URLs, so the token never appears in a URL.
 * All server and user data reaches the DOM through textContent only.
 */
(function () {
  'use strict';

  var params = new URLSearchParams(location.search);
  var contactId = params.get('contact_id') || '';
  var widgetKey = params.get('widget_key') || '';
  var STORE_KEY = 'parley.widget.' + contactId;
  var embedded = window.parent !== window;

  // The widget's language: the snippet's `data-lang` (passed as `lang`), else the browser's.
  // The same tag goes with the pre-chat form, so the service's system messages match it.
  var LANG_TAG = tagOf(params.get('lang')) || tagOf(navigator.language) || '';
  var I18N = window.ParleyI18n;
  var LANG = I18N ? I18N.pick(LANG_TAG) : 'en';
  function T(key, vars) {
    return I18N ? I18N.t(LANG, key, vars) : key;
  }
  function tagOf(raw) {
    var tag = String(raw || '');
    return /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$/.test(tag) ? tag : '';
  }
  // Static texts of the page, marked with data-i18n attributes in frame.html.
  function translatePage() {
    document.documentElement.lang = LANG;
    document.querySelectorAll('[data-i18n]').forEach(function (n) {
      n.textContent = T(n.getAttribute('data-i18n'));
    });
    [['data-i18n-aria-label', 'aria-label'], ['data-i18n-title', 'title'], ['data-i18n-placeholder', 'placeholder']].forEach(
      function (pair) {
        document.querySelectorAll('[' + pair[0] + ']').forEach(function (n) {
          n.setAttribute(pair[1], T(n.getAttribute(pair[0])));
        });
      }
    );
  }
  translatePage();

  function $(id) {
    return document.getElementById(id);
  }
  var form = $('prechat');
  var formError = $('form-error');
  var startBtn = $('start');
  var prechatView = $('prechat-view');
  var chatView = $('chat-view');
  var titleEl = $('title');
  var statusEl = $('status');
  var log = $('log');
  var composerForm = $('composer-form');
  var composer = $('composer');
  var sendBtn = $('send');
  var endBtn = $('end');
  var endedBox = $('ended');
  var restartBtn = $('restart');
  var minimizeBtn = $('minimize');
  var queueEl = $('queue');

  // "<Agent> is typing…": a polite live region that stays in the page (empty while nobody types),
  // between the log and the composer. Its text is set only when the indicator appears, so screen
  // readers announce it once, not on every typing frame.
  var typingEl = el('p', 'typing');
  typingEl.id = 'typing';
  typingEl.setAttribute('role', 'status');
  typingEl.setAttribute('aria-live', 'polite');
  typingEl.setAttribute('aria-atomic', 'true');
  chatView.insertBefore(typingEl, endedBox);

  var FIELDS = ['display_name', 'email', 'first_message', 'privacy_consent'];

  // ---- storage (sessionStorage may be unavailable, e.g. blocked third-party storage) ----

  var memory = {};
  function storeGet(k) {
    try {
      return window.sessionStorage.getItem(k);
    } catch (e) {
      return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null;
    }
  }
  function storeSet(k, v) {
    try {
      window.sessionStorage.setItem(k, v);
    } catch (e) {
      memory[k] = v;
    }
  }
  function storeRemove(k) {
    try {
      window.sessionStorage.removeItem(k);
    } catch (e) {
      /* ignore */
    }
    delete memory[k];
  }

  // state = {conversation_id, visitor_token, last_seq, outbox:[{client_msg_id,text}],
  //          service_name, display_name, agent_name, ended}
  var state = null;

  function loadState() {
    try {
      var s = JSON.parse(storeGet(STORE_KEY) || 'null');
      if (s && typeof s.conversation_id === 'string' && typeof s.visitor_token === 'string') {
        s.last_seq = Number(s.last_seq) || 0;
        s.outbox = Array.isArray(s.outbox) ? s.outbox : [];
        return s;
      }
    } catch (e) {
      /* corrupt: start over */
    }
    return null;
  }
  function saveState() {
    if (state) storeSet(STORE_KEY, JSON.stringify(state));
  }

  // ---- helpers ----

  function newClientMsgId() {
    try {
      if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    } catch (e) {
      /* randomUUID needs a secure context; fall through */
    }
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    var hex = '';
    for (var j = 0; j < 16; j++) hex += (bytes[j] + 0x100).toString(16).slice(1);
    return 'm-' + hex;
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
      return d.toLocaleTimeString(LANG_TAG ? [LANG_TAG.replace('_', '-')] : [], { hour: '2-digit', minute: '2-digit' });
    } catch (e) {
      return '';
    }
  }

  function setStatus(text) {
    statusEl.textContent = text;
  }

  function postToHost(type, extra) {
    // Nothing secret is sent; the host origin is unknown to us, hence '*'.
    if (embedded) {
      try {
        var msg = { type: type };
        if (extra) msg.label = extra.label;
        window.parent.postMessage(msg, '*');
      } catch (e) {
        /* ignore */
      }
    }
  }

  // ---- pre-chat form ----

  function fieldInput(name) {
    return $(name);
  }
  function fieldErrorEl(name) {
    return form.querySelector('[data-error-for="' + name + '"]');
  }

  function setFieldError(name, message) {
    var errEl = fieldErrorEl(name);
    var input = fieldInput(name);
    if (errEl) errEl.textContent = message || '';
    if (input) {
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  }

  function clearErrors() {
    formError.textContent = '';
    FIELDS.forEach(function (f) {
      setFieldError(f, '');
    });
  }

  function sentence(s) {
    s = String(s || '');
    if (!s) return s;
    s = s.charAt(0).toUpperCase() + s.slice(1);
    return /[.!?]$/.test(s) ? s : s + '.';
  }

  function validateForm() {
    var errors = {};
    var name = $('display_name').value.trim();
    var emailInput = $('email');
    var email = emailInput.value.trim();
    if (!name) errors.display_name = T('err_name');
    if (!email) errors.email = T('err_email');
    else if (emailInput.validity && emailInput.validity.typeMismatch) errors.email = T('err_email_invalid');
    if (!$('privacy_consent').checked) errors.privacy_consent = T('err_consent');
    if ($('first_message').value.length > 4000) errors.first_message = T('err_message_long');
    var first = null;
    FIELDS.forEach(function (f) {
      if (errors[f]) {
        setFieldError(f, errors[f]);
        if (!first) first = f;
      }
    });
    if (first) {
      formError.textContent = T('check_fields');
      fieldInput(first).focus();
      return false;
    }
    return true;
  }

  // The server's field errors in the widget's language where their code is known.
  var FIELD_CODES = {
    'display_name:required': 'err_name',
    'email:required': 'err_email',
    'email:invalid_email': 'err_email_invalid',
    'privacy_consent:consent_required': 'err_consent',
    'first_message:too_long': 'err_message_long'
  };
  function fieldMessage(e) {
    var key = FIELD_CODES[String((e && e.path) || '').replace(/^\//, '') + ':' + String((e && e.code) || '')];
    if (key) return T(key);
    return LANG === 'en' && e && e.message ? sentence(e.message) : T('invalid_value');
  }

  // Shows an application/problem+json body: field errors next to their field, the rest on top.
  function showProblem(problem, status) {
    var p = problem && typeof problem === 'object' ? problem : {};
    var errors = Array.isArray(p.errors) ? p.errors : [];
    var unplaced = [];
    var first = null;
    errors.forEach(function (e) {
      var name = String((e && e.path) || '').replace(/^\//, '');
      var msg = fieldMessage(e);
      if (FIELDS.indexOf(name) >= 0) {
        setFieldError(name, msg);
        if (!first) first = name;
      } else {
        unplaced.push(msg);
      }
    });
    var main;
    if (errors.length && !unplaced.length) main = T('check_fields');
    else if (unplaced.length) main = unplaced.join(' ');
    else if (status === 404 || p.code === 'not_found' || p.code === 'unknown_widget') main = T('not_available');
    else if (LANG !== 'en' || !(p.detail || p.title)) main = T('went_wrong', { status: status });
    else main = sentence(p.detail || p.title);
    formError.textContent = main;
    if (first) fieldInput(first).focus();
  }

  FIELDS.forEach(function (f) {
    var input = fieldInput(f);
    input.addEventListener(f === 'privacy_consent' ? 'change' : 'input', function () {
      setFieldError(f, '');
    });
  });

  var submitting = false;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (submitting) return;
    clearErrors();
    if (!validateForm()) return;

    var displayName = $('display_name').value.trim();
    var body = {
      contact_id: contactId,
      widget_key: widgetKey,
      display_name: displayName,
      email: $('email').value.trim(),
      privacy_consent: true
    };
    var firstMessage = $('first_message').value.trim();
    if (firstMessage) body.first_message = firstMessage;
    // Picks the language of the service's system messages, as the widget's own texts.
    if (LANG_TAG) body.language = LANG_TAG;

    submitting = true;
    startBtn.disabled = true;
    startBtn.textContent = T('starting');
    fetch('/api/v1/widget/conversations', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
      body: JSON.stringify(body),
      credentials: 'omit'
    })
      .then(function (res) {
        return res.text().then(function (t) {
          var data = null;
          try {
            data = t ? JSON.parse(t) : null;
          } catch (e) {
            /* not JSON */
          }
          return { res: res, data: data };
        });
      })
      .then(function (r) {
        if (r.res.status === 201 && r.data && r.data.conversation_id && r.data.visitor_token) {
          state = {
            conversation_id: String(r.data.conversation_id),
            visitor_token: String(r.data.visitor_token),
            last_seq: 0,
            outbox: [],
            service_name: r.data.service_name ? String(r.data.service_name) : '',
            display_name: displayName,
            agent_name: '',
            ended: false
          };
          saveState();
          enterChat(true);
          connect();
        } else {
          showProblem(r.data, r.res.status);
        }
      })
      .catch(function () {
        formError.textContent = T('unreachable');
      })
      .then(function () {
        submitting = false;
        startBtn.disabled = false;
        startBtn.textContent = T('start');
      });
  });

  // ---- chat view & log ----

  var lastSeq = 0; // highest seq rendered in this page
  var bySeq = Object.create(null); // seq -> <li>
  var byClientId = Object.create(null); // own client_msg_id -> <li>

  function enterChat(focus) {
    prechatView.hidden = true;
    chatView.hidden = false;
    document.body.classList.add('chat-active');
    if (state.service_name) titleEl.textContent = state.service_name;
    endBtn.hidden = !!state.ended;
    setStatus(T('connecting'));
    renderEnded(!!state.ended);
    if (focus && !state.ended) composer.focus();
  }

  function scrollToEndIfNear(force) {
    var near = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    if (force || near) log.scrollTop = log.scrollHeight;
  }

  // Confirmed entries stay in seq order; pending (no seq yet) ones stay after them.
  function place(li, seq) {
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

  function eventText(ev) {
    switch (ev && ev.type) {
      case 'accepted':
        return T('ev_accepted');
      case 'queued':
        return T('ev_queued');
      case 'invited':
        return T('ev_invited', { name: ev.user_name || T('someone_asked') });
      case 'connected':
        return T('ev_connected', { name: ev.agent_name || T('an_agent_cap') });
      case 'transferred':
        return T('ev_transferred');
      case 'ended':
        return T('ev_ended');
      default:
        return '';
    }
  }

  function myName() {
    return (state && state.display_name) || T('you');
  }

  function buildEntry(entry) {
    var time = entry.created_at || null;
    if (entry.kind === 'event') {
      var li = el('li', 'entry event event-' + ((entry.event && entry.event.type) || 'other'), eventText(entry.event));
      return li;
    }
    var sender = entry.sender || {};
    var li;
    if (sender.role === 'customer') li = messageLi('msg-customer', sender.name || myName(), entry.text, time);
    else if (sender.role === 'agent') li = messageLi('msg-agent', sender.name || T('agent'), entry.text, time);
    else li = messageLi('msg-system', (state && state.service_name) || 'Parley', entry.text, time);
    if (entry.attachment) showAttachment(li, entry.attachment);
    return li;
  }

  // ---- files ----

  var fileUrls = Object.create(null); // attachment id -> Promise of an object URL

  function attachmentPath(id) {
    return (
      '/api/v1/widget/conversations/' + encodeURIComponent(state.conversation_id) + '/attachments/' + encodeURIComponent(id)
    );
  }

  // The file's bytes as an object URL, fetched once with the visitor token.
  function fileUrl(att) {
    var id = String(att.id);
    if (!fileUrls[id]) {
      fileUrls[id] = fetch(attachmentPath(id), {
        headers: { Authorization: 'Bearer ' + state.visitor_token },
        credentials: 'omit'
      }).then(function (res) {
        if (!res.ok) throw new Error('file ' + res.status);
        return res.blob().then(function (b) {
          return URL.createObjectURL(b);
        });
      });
      fileUrls[id].catch(function () {
        delete fileUrls[id]; // try again next time
      });
    }
    return fileUrls[id];
  }

  function showAttachment(li, att) {
    if (li.querySelector('a.file')) return;
    var pending = li.querySelector('.file');
    if (pending) pending.remove();
    li.classList.add('has-file');
    li.insertBefore(ParleyText.attachment(att, fileUrl), li.querySelector('.state'));
  }

  function sendFile(file) {
    if (!state || state.ended || !file) return;
    var id = newClientMsgId();
    var li = messageLi('msg-customer pending', myName(), '', '');
    li.dataset.clientMsgId = id;
    li.classList.add('has-file');
    var chip = el('span', 'file file-doc');
    chip.appendChild(el('span', 'file-name', file.name));
    chip.appendChild(el('span', 'file-size', ParleyText.formatSize(file.size)));
    li.appendChild(chip);
    setDeliveryState(li, T('uploading'));
    byClientId[id] = li;
    log.appendChild(li);
    scrollToEndIfNear(true);
    var path =
      '/api/v1/widget/conversations/' + encodeURIComponent(state.conversation_id) + '/attachments?client_msg_id=' +
      encodeURIComponent(id) + '&name=' + encodeURIComponent(file.name);
    fetch(path, {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + state.visitor_token, 'Content-Type': 'application/octet-stream' },
      body: file,
      credentials: 'omit'
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error(LANG === 'en' && body && body.detail ? body.detail : T('file_not_sent'));
          return body;
        });
      })
      .then(function (body) {
        showAttachment(li, body.attachment);
        onAck({ client_msg_id: id, seq: body.seq, duplicate: body.duplicate });
      })
      .catch(function (e) {
        markFailed(li, String((e && e.message) || T('file_not_sent')));
      });
  }

  // ---- transcript ----

  // Downloads the chat as plain text, with times in the visitor's own time zone.
  var transcriptBtn = $('transcript');
  var transcriptLink = $('transcript-link');
  transcriptBtn.addEventListener('click', function () {
    if (!state) return;
    var tz = '';
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
    } catch (e) {
      /* UTC then */
    }
    transcriptBtn.disabled = true;
    var path =
      '/api/v1/widget/conversations/' + encodeURIComponent(state.conversation_id) + '/transcript' +
      (tz ? '?tz=' + encodeURIComponent(tz) : '');
    fetch(path, { headers: { Authorization: 'Bearer ' + state.visitor_token }, credentials: 'omit' })
      .then(function (res) {
        if (!res.ok) throw new Error('transcript ' + res.status);
        return res.blob();
      })
      .then(function (blob) {
        if (transcriptLink.href) URL.revokeObjectURL(transcriptLink.href);
        transcriptLink.href = URL.createObjectURL(blob);
        transcriptLink.download = 'chat-transcript.txt';
        transcriptLink.click();
      })
      .catch(function () {
        setStatus(T('transcript_failed'));
      })
      .then(function () {
        transcriptBtn.disabled = false;
      });
  });

  var fileInput = $('file');
  $('attach').addEventListener('click', function () {
    fileInput.click();
  });
  fileInput.addEventListener('change', function () {
    Array.prototype.forEach.call(fileInput.files || [], sendFile);
    fileInput.value = '';
  });

  // Renders one LogEntry unless already shown. `live` is false for the transcript fetched over
  // HTTP after a reload (nothing in it is news to the visitor).
  function renderEntry(entry, live) {
    var seq = Number(entry && entry.seq);
    if (!(seq > 0) || seq <= lastSeq) return;

    var own = entry.kind === 'message' && entry.sender && entry.sender.role === 'customer' && entry.client_msg_id;
    var li = bySeq[seq] || (own ? byClientId[entry.client_msg_id] : null);
    if (li) {
      // Our own message, already on screen (pending or acked): confirm it in place.
      li.classList.remove('pending', 'failed');
      setTime(li, entry.created_at);
      if (entry.attachment) showAttachment(li, entry.attachment);
    } else {
      li = buildEntry(entry);
      if (own) byClientId[entry.client_msg_id] = li;
    }
    li.dataset.seq = String(seq);
    bySeq[seq] = li;
    if (own) setReceipt(li);
    place(li, seq);

    lastSeq = seq;
    state.last_seq = seq;
    if (own) removeFromOutbox(entry.client_msg_id);
    saveState();

    if (entry.kind === 'message' && entry.sender && entry.sender.role === 'agent') hideTyping();
    scheduleSeen();
    if (entry.kind === 'event') applyEvent(entry.event || {});
    else if (live && entry.sender && entry.sender.role !== 'customer') postToHost('parley:unread');
    scrollToEndIfNear(own);
  }

  function applyEvent(ev) {
    if (ev.type === 'queued') {
      waiting = true;
      if (!state.agent_name) setStatus(T('waiting_agent'));
    } else if (ev.type === 'invited') {
      // A personal chat: one person is asked, there is no queue to wait in.
      waiting = false;
      hideQueue();
      if (!state.agent_name) setStatus(T('waiting_for', { name: ev.user_name || T('an_answer') }));
    } else if (ev.type === 'transferred') {
      // Back in a queue (of another service): its positions follow as queue frames.
      waiting = true;
    } else if (ev.type === 'connected') {
      waiting = false;
      hideQueue();
      state.agent_name = String(ev.agent_name || '');
      saveState();
      setStatus(T('connected_with', { name: state.agent_name || T('an_agent') }));
    } else if (ev.type === 'ended') {
      markEnded();
    }
  }

  // ---- queue status ----

  var waiting = true; // false once an agent is connected (until a transfer) or the chat ended

  function waitText(secs) {
    if (secs == null || !isFinite(secs)) return '';
    if (secs < 60) return T('wait_short');
    return T('wait_minutes', { minutes: Math.ceil(secs / 60) });
  }

  // The live region stays in the page; only its content comes and goes, so every change is read.
  function showQueue(position, waitSecs) {
    var pos = Math.floor(Number(position));
    if (!(pos >= 1) || !state || state.ended || !waiting) return;
    var wait = waitSecs == null ? null : Number(waitSecs);
    var posText = T('queue_position', { position: pos });
    var waitLine = waitText(wait);
    if (queueEl.dataset.shown === posText + '|' + waitLine) return; // nothing new to announce
    queueEl.textContent = '';
    queueEl.dataset.shown = posText + '|' + waitLine;
    var icon = el('span', 'queue-icon');
    icon.setAttribute('aria-hidden', 'true');
    icon.textContent = String(pos);
    queueEl.appendChild(icon);
    var text = el('div', 'queue-text');
    text.appendChild(el('p', 'queue-position', posText));
    if (waitLine) text.appendChild(el('p', 'queue-wait', waitLine));
    queueEl.appendChild(text);
    queueEl.dataset.position = String(pos);
  }

  function hideQueue() {
    queueEl.textContent = '';
    delete queueEl.dataset.position;
    delete queueEl.dataset.shown;
  }

  // ---- typing ----

  var TYPING_SHOW_MS = 5000; // an agent's typing shows this long after their last typing frame
  var TYPING_EVERY_MS = 3000; // our own typing is signalled at most this often
  var typingTimer = null;
  var lastTypingSent = 0;

  function showTyping(name) {
    if (!state || state.ended) return;
    var text = T('typing', { name: name ? String(name) : state.agent_name || T('the_agent') });
    // Unchanged text is not announced again; the timer just starts over.
    if (typingEl.textContent !== text) typingEl.textContent = text;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typingTimer = null;
    if (typingEl.textContent) typingEl.textContent = '';
  }

  function signalTyping() {
    // Only to a connected agent; the server drops it otherwise anyway.
    if (!ready || !state || state.ended || waiting || !composer.value.trim()) return;
    var now = Date.now();
    if (now - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = now;
    sendFrame({ type: 'typing' });
  }

  function renderEnded(ended) {
    if (ended) {
      hideQueue();
      hideTyping();
    }
    endedBox.hidden = !ended;
    composerForm.hidden = ended;
    composer.disabled = ended;
    sendBtn.disabled = ended;
    endBtn.hidden = ended;
    if (ended) setStatus(T('chat_ended'));
  }

  function markEnded() {
    if (!state) return;
    state.ended = true;
    // Unsent messages can no longer be delivered.
    state.outbox.forEach(function (m) {
      var li = byClientId[m.client_msg_id];
      if (li && !li.dataset.seq) markFailed(li);
    });
    state.outbox = [];
    saveState();
    renderEnded(true);
    // The socket stays open for whatever the server still sends; onclose won't reconnect.
  }

  function markFailed(li, why) {
    li.classList.remove('pending');
    li.classList.add('failed');
    setDeliveryState(li, why || T('not_delivered'));
  }

  // ---- sending ----

  function removeFromOutbox(id) {
    if (!state) return;
    var before = state.outbox.length;
    state.outbox = state.outbox.filter(function (m) {
      return m.client_msg_id !== id;
    });
    if (state.outbox.length !== before) saveState();
  }

  function showPending(msg) {
    var li = messageLi('msg-customer pending', myName(), msg.text, '');
    li.dataset.clientMsgId = msg.client_msg_id;
    setDeliveryState(li, T('sending'));
    byClientId[msg.client_msg_id] = li;
    log.appendChild(li);
    scrollToEndIfNear(true);
  }

  function sendMessage() {
    if (!state || state.ended) return;
    var text = composer.value;
    if (!text.trim()) return;
    var msg = { client_msg_id: newClientMsgId(), text: text };
    state.outbox.push(msg);
    saveState();
    showPending(msg);
    composer.value = '';
    autosize();
    lastTypingSent = 0; // typing on after a message is news again
    if (ready) sendFrame({ type: 'send', client_msg_id: msg.client_msg_id, text: msg.text });
  }

  function onAck(f) {
    removeFromOutbox(f.client_msg_id);
    var li = byClientId[f.client_msg_id];
    if (!li) return;
    li.classList.remove('pending');
    var seq = Number(f.seq);
    if (seq > 0 && !li.dataset.seq) {
      // The entry itself may arrive later (or only in a replay); it will confirm this <li>.
      li.dataset.seq = String(seq);
      bySeq[seq] = li;
      place(li, seq);
      if (!li.querySelector('time')) setTime(li, null);
    }
    if (li.dataset.seq) setReceipt(li);
  }

  // ---- receipts ----

  var agentMark = { delivered: 0, read: 0 }; // how far the agent side has received and read
  var sentMark = { delivered: 0, read: 0 }; // what this socket last reported of ours
  var hostShown = true; // the host page shows the widget (it says so when that changes)
  var seenQueued = false;

  function receiptText(seq) {
    if (seq <= agentMark.read) return T('read');
    if (seq <= agentMark.delivered) return T('delivered');
    return T('sent');
  }

  // An acknowledged message of ours: Sent, Delivered or Read as the agent side's marks say.
  function setReceipt(li) {
    var seq = Number(li.dataset.seq);
    if (!(seq > 0) || li.classList.contains('failed')) return;
    var text = receiptText(seq);
    if (li.dataset.receipt === text) return;
    li.dataset.receipt = text;
    setDeliveryState(li, text);
  }

  function onReceipt(f) {
    if (f.reader !== 'agent') return;
    agentMark.delivered = Math.max(agentMark.delivered, Number(f.delivered_seq) || 0);
    agentMark.read = Math.max(agentMark.read, Number(f.read_seq) || 0);
    var own = log.querySelectorAll('.msg-customer[data-seq]');
    for (var i = 0; i < own.length; i++) setReceipt(own[i]);
  }

  function onScreen() {
    return hostShown && document.visibilityState === 'visible' && !chatView.hidden;
  }

  // Entries render in bursts (a replay): report once after the burst.
  function scheduleSeen() {
    if (seenQueued) return;
    seenQueued = true;
    setTimeout(function () {
      seenQueued = false;
      reportSeen();
    }, 0);
  }

  function reportSeen() {
    if (!ready || !state || !(lastSeq > 0)) return;
    if (onScreen()) {
      if (lastSeq <= sentMark.read) return;
      sentMark.read = sentMark.delivered = lastSeq;
      sendFrame({ type: 'read', seq: lastSeq });
    } else if (lastSeq > sentMark.delivered) {
      sentMark.delivered = lastSeq;
      sendFrame({ type: 'delivered', seq: lastSeq });
    }
  }

  document.addEventListener('visibilitychange', reportSeen);

  function onError(f) {
    if (f.code === 'conversation_ended') {
      markEnded();
      return;
    }
    if (f.client_msg_id) {
      removeFromOutbox(f.client_msg_id);
      var li = byClientId[f.client_msg_id];
      if (li && !li.dataset.seq) markFailed(li, T('not_delivered_because', { reason: f.message || f.code || 'error' }));
    }
  }

  composerForm.addEventListener('submit', function (ev) {
    ev.preventDefault();
    sendMessage();
    composer.focus();
  });
  composer.addEventListener('keydown', function (ev) {
    // Enter sends, Shift+Enter is a newline; leave IME composition alone.
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      sendMessage();
    }
  });
  function autosize() {
    composer.style.height = 'auto';
    composer.style.height = Math.min(composer.scrollHeight + 2, 140) + 'px';
  }
  composer.addEventListener('input', function () {
    autosize();
    signalTyping();
  });

  endBtn.addEventListener('click', function () {
    if (!state || state.ended) return;
    if (ready) {
      sendFrame({ type: 'end' });
      endBtn.disabled = true;
    } else {
      setStatus(T('retrying'));
    }
  });

  restartBtn.addEventListener('click', function () {
    stopSocket();
    storeRemove(STORE_KEY);
    state = null;
    lastSeq = 0;
    bySeq = Object.create(null);
    byClientId = Object.create(null);
    log.textContent = '';
    hideQueue();
    hideTyping();
    lastTypingSent = 0;
    agentMark = { delivered: 0, read: 0 };
    sentMark = { delivered: 0, read: 0 };
    waiting = true;
    composer.value = '';
    $('first_message').value = '';
    $('privacy_consent').checked = false;
    clearErrors();
    endBtn.disabled = false;
    chatView.hidden = true;
    prechatView.hidden = false;
    document.body.classList.remove('chat-active');
    titleEl.textContent = T('title');
    setStatus(T('status_idle'));
    $('display_name').focus();
  });

  minimizeBtn.hidden = !embedded;
  minimizeBtn.addEventListener('click', function () {
    postToHost('parley:close');
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'Escape') postToHost('parley:close');
  });
  window.addEventListener('message', function (ev) {
    if (ev.source !== window.parent || !ev.data) return;
    if (ev.data.type === 'parley:shown' || ev.data.type === 'parley:hidden') {
      hostShown = ev.data.type === 'parley:shown';
      reportSeen();
      return;
    }
    if (ev.data.type !== 'parley:focus') return;
    if (!chatView.hidden && !composer.disabled) composer.focus();
    else if (!prechatView.hidden) $('display_name').focus();
  });

  // ---- WebSocket with reconnect ----

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
    if (!state || state.ended) return;
    stopped = false;
    clearTimeout(retryTimer);
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var url =
      proto +
      '//' +
      location.host +
      '/ws/v1/visitor?token=' +
      encodeURIComponent(state.visitor_token) +
      '&since_seq=' +
      lastSeq;
    var sock;
    try {
      sock = new WebSocket(url);
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
      if (stopped || !state || state.ended) return;
      setStatus(T('reconnecting'));
      if (closesBeforeHello >= 2) checkTokenThenReconnect();
      else scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 5000);
  }

  // Two failed upgrades in a row: maybe the server is down, maybe the token is no longer valid.
  // Browsers hide the upgrade status, so ask the HTTP API, which says 401 for a dead token.
  function checkTokenThenReconnect() {
    fetchLog(lastSeq)
      .then(function () {
        scheduleReconnect();
      })
      .catch(function (err) {
        if (err && err.status === 401) {
          markEnded();
          setStatus(T('no_longer'));
        } else {
          scheduleReconnect();
        }
      });
  }

  function stopSocket() {
    stopped = true;
    ready = false;
    clearTimeout(retryTimer);
    if (ws) {
      var s = ws;
      ws = null;
      try {
        s.close(1000);
      } catch (e) {
        /* ignore */
      }
    }
  }

  function handleFrame(f) {
    switch (f && f.type) {
      case 'hello':
        ready = true;
        // A report sent as the last socket closed may be lost; the server ignores repeats.
        sentMark = { delivered: 0, read: 0 };
        scheduleSeen();
        backoff = 250;
        closesBeforeHello = 0;
        endBtn.disabled = false;
        if (f.status === 'ended') {
          // The replay that follows still renders; nothing more can be sent.
          markEnded();
          return;
        }
        waiting = f.status !== 'connected';
        if (!waiting) hideQueue();
        if (f.status === 'connected') setStatus(T('connected_with', { name: state.agent_name || T('an_agent') }));
        else setStatus(T('waiting_agent'));
        // Resend everything not yet acknowledged, with the original ids.
        state.outbox.forEach(function (m) {
          sendFrame({ type: 'send', client_msg_id: m.client_msg_id, text: m.text });
        });
        break;
      case 'entry':
        if (f.entry) renderEntry(f.entry, true);
        break;
      case 'queue':
        showQueue(f.position, f.estimated_wait_secs);
        break;
      case 'typing':
        if (f.who === 'agent') showTyping(f.name);
        break;
      case 'receipt':
        onReceipt(f);
        break;
      case 'ack':
        onAck(f);
        break;
      case 'error':
        onError(f);
        break;
      default:
        break;
    }
  }

  // ---- resume after reload ----

  function fetchLog(since) {
    return fetch(
      '/api/v1/widget/conversations/' + encodeURIComponent(state.conversation_id) + '/log?since_seq=' + since,
      { headers: { Authorization: 'Bearer ' + state.visitor_token, Accept: 'application/json' }, credentials: 'omit' }
    ).then(function (res) {
      if (!res.ok) {
        var err = new Error('log ' + res.status);
        err.status = res.status;
        throw err;
      }
      return res.json().then(function (body) {
        var entries = Array.isArray(body) ? body : body && body.entries;
        if (!Array.isArray(entries)) throw new Error('bad log body');
        return entries;
      });
    });
  }

  function resume() {
    enterChat(false);
    // The page is blank after a reload: fetch the transcript, then stream from the last seq we
    // rendered. If the transcript can't be fetched, a socket from 0 replays all of it instead.
    fetchLog(0)
      .then(function (entries) {
        entries.forEach(function (e) {
          renderEntry(e, false);
        });
      })
      .catch(function (err) {
        if (err && err.status === 401) {
          markEnded();
          setStatus(T('no_longer'));
        }
      })
      .then(function () {
        state.outbox.forEach(function (m) {
          if (!byClientId[m.client_msg_id]) showPending(m);
        });
        if (state.ended) {
          renderEnded(true);
          return;
        }
        connect();
        if (!composer.disabled) composer.focus();
      });
  }

  window.addEventListener('online', function () {
    if (state && !state.ended && !ws && !stopped) {
      backoff = 250;
      connect();
    }
  });

  // The launcher on the host page reads the same language.
  postToHost('parley:texts', { label: T('title') });

  state = loadState();
  if (state) resume();
})();
