/*
 * Parley chat SDK: the visitor side of Parley's protocol for pages that draw their own chat.
 *
 *   <script src="{BASE}/sdk/parley-chat.js"></script>
 *   const chat = await ParleyChat.start({
 *     base: '{BASE}', contactId: '…', widgetKey: '…',
 *     displayName: 'Ann', email: 'ann@example.com', privacyConsent: true, firstMessage: 'Hi'
 *   });
 *   chat.on('entry', (entry) => show(entry));
 *   await chat.send('Hello');
 *
 * Every log entry reaches `entry` listeners exactly once and in order, across reconnects and
 * page reloads (keep `chat.session()` and pass it to `ParleyChat.resume`). A message sent while
 * the connection is down waits and goes out (with the same id, so never twice) once it is back.
 * Texts from entries are plain text: put them in the page with `textContent`, never as HTML.
 * docs/sdk.md describes every call and event.
 */
(function (root) {
  'use strict';

  var BACKOFF_MIN_MS = 250;
  var BACKOFF_MAX_MS = 10000;
  // A connection that lasted this long was healthy: the next reconnect starts quickly again.
  var STABLE_MS = 5000;
  // A message the server could not store is sent again after this long.
  var RESEND_MS = 500;

  function trimBase(base) {
    var b = String(base || '');
    if (!b && root.location) b = root.location.origin;
    return b.replace(/\/+$/, '');
  }

  function newId() {
    try {
      if (root.crypto && typeof root.crypto.randomUUID === 'function') return root.crypto.randomUUID();
    } catch (e) {
      /* fall through */
    }
    return 'm-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 10);
  }

  /** An error from Parley: `status`, the stable `code`, and `errors` with field paths. */
  function ParleyError(status, problem) {
    var p = problem || {};
    this.name = 'ParleyError';
    this.status = status;
    this.code = p.code || 'http_' + status;
    this.message = p.detail || p.title || 'request failed (' + status + ')';
    this.errors = Array.isArray(p.errors) ? p.errors : [];
  }
  ParleyError.prototype = Object.create(Error.prototype);
  ParleyError.prototype.constructor = ParleyError;

  function request(method, url, body, token, contentType) {
    var headers = { Accept: 'application/json, application/problem+json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    var init = { method: method, headers: headers, credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = contentType || 'application/json';
      init.body = contentType ? body : JSON.stringify(body);
    }
    return fetch(url, init).then(function (res) {
      var type = res.headers.get('content-type') || '';
      var parsed = type.indexOf('json') >= 0 ? res.json() : res.text();
      return parsed.then(function (data) {
        if (!res.ok) throw new ParleyError(res.status, typeof data === 'object' ? data : null);
        return data;
      });
    });
  }

  function Chat(base, session) {
    this.base = base;
    this.conversationId = session.conversationId;
    this.token = session.token;
    this.serviceName = session.serviceName || '';
    this.lastSeq = Number(session.lastSeq) || 0;
    this.status = 'connecting';
    this.ended = false;
    this._listeners = {};
    this._pending = []; // {client_msg_id, text, resolve, reject}, in send order
    this._ws = null;
    this._closed = false;
    this._backoff = BACKOFF_MIN_MS;
    this._timer = null;
    this._upSince = 0;
    this._endWanted = false;
    this._endTold = false;
  }

  /** Listens to `entry`, `queue`, `typing`, `receipt`, `status`, `ended` or `error`. */
  Chat.prototype.on = function (event, fn) {
    (this._listeners[event] = this._listeners[event] || []).push(fn);
    return this;
  };

  Chat.prototype.off = function (event, fn) {
    var list = this._listeners[event] || [];
    this._listeners[event] = list.filter(function (f) {
      return f !== fn;
    });
    return this;
  };

  Chat.prototype._emit = function (event, value) {
    (this._listeners[event] || []).slice().forEach(function (fn) {
      try {
        fn(value);
      } catch (e) {
        if (root.console) root.console.error(e);
      }
    });
  };

  /** What to keep (e.g. in sessionStorage) to resume after a page reload. */
  Chat.prototype.session = function () {
    return {
      base: this.base,
      conversationId: this.conversationId,
      token: this.token,
      serviceName: this.serviceName,
      lastSeq: this.lastSeq
    };
  };

  Chat.prototype._setStatus = function (status) {
    if (this.status === status) return;
    this.status = status;
    this._emit('status', status);
  };

  Chat.prototype._connect = function () {
    if (this._closed) return;
    var self = this;
    var url =
      this.base.replace(/^http/, 'ws') +
      '/ws/v1/visitor?token=' +
      encodeURIComponent(this.token) +
      '&since_seq=' +
      this.lastSeq;
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this._retry();
      return;
    }
    this._ws = ws;
    this._setStatus('connecting');
    ws.onmessage = function (ev) {
      var f;
      try {
        f = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      self._frame(f);
    };
    var greeted = false;
    ws.addEventListener('message', function () {
      greeted = true;
    });
    ws.onclose = function () {
      if (self._ws !== ws) return;
      self._ws = null;
      if (self.ended) {
        self._setStatus('ended');
        return;
      }
      if (greeted) {
        if (Date.now() - self._upSince >= STABLE_MS) self._backoff = BACKOFF_MIN_MS;
        self._retry();
        return;
      }
      // Refused before any frame: a browser does not say why, so ask the API. An expired token
      // or a website the service does not allow will not change by retrying.
      self._check().then(
        function () {
          self._retry();
        },
        function (err) {
          if (err instanceof ParleyError && err.status >= 400 && err.status < 500) {
            self._closed = true;
            self._setStatus('closed');
            self._failPending(err);
            self._emit('error', { code: err.code, message: err.message });
          } else {
            self._retry();
          }
        }
      );
    };
  };

  Chat.prototype._check = function () {
    var path = '/api/v1/widget/conversations/' + encodeURIComponent(this.conversationId) + '/log?since_seq=' + this.lastSeq;
    return request('GET', this.base + path, undefined, this.token);
  };

  Chat.prototype._retry = function () {
    if (this._closed) return;
    var self = this;
    this._setStatus('reconnecting');
    clearTimeout(this._timer);
    this._timer = setTimeout(function () {
      self._connect();
    }, this._backoff);
    this._backoff = Math.min(this._backoff * 2, BACKOFF_MAX_MS);
  };

  Chat.prototype._frame = function (f) {
    switch (f && f.type) {
      case 'hello':
        this._upSince = Date.now();
        if (f.status === 'ended') {
          // Resumed after the end: the replay (if any) follows; nothing can be sent any more.
          this._over({ type: 'ended' });
          break;
        }
        this._setStatus('online');
        // Whatever was not acknowledged goes again, with its own id: never stored twice.
        this._pending.forEach(function (m) {
          this._sendFrame({ type: 'send', client_msg_id: m.client_msg_id, text: m.text });
        }, this);
        if (this._endWanted) this._sendFrame({ type: 'end' });
        break;
      case 'entry':
        this._entry(f.entry);
        break;
      case 'ack':
        this._ack(f);
        break;
      case 'queue':
        this._emit('queue', { position: f.position, estimatedWaitSecs: f.estimated_wait_secs });
        break;
      case 'typing':
        this._emit('typing', { name: f.name || '' });
        break;
      case 'receipt':
        this._emit('receipt', { deliveredSeq: f.delivered_seq, readSeq: f.read_seq });
        break;
      case 'error':
        this._error(f);
        break;
      default:
        break;
    }
  };

  Chat.prototype._entry = function (entry) {
    var seq = Number(entry && entry.seq);
    if (!(seq > this.lastSeq)) return; // seen already
    this.lastSeq = seq;
    this._emit('entry', entry);
    this._sendFrame({ type: 'delivered', seq: seq });
    if (entry.kind === 'event' && entry.event && entry.event.type === 'ended') {
      this._over(entry.event);
      // Nothing more will come: the connection is closed (the chat stays readable by resume).
      this._closed = true;
      clearTimeout(this._timer);
      var ws = this._ws;
      this._ws = null;
      if (ws) ws.close(1000, 'chat ended');
    }
  };

  /** The chat has ended: sends are refused, `ended` is told once. */
  Chat.prototype._over = function (event) {
    this.ended = true;
    this._failPending(new ParleyError(409, { code: 'conversation_ended', detail: 'the chat has ended' }));
    this._setStatus('ended');
    if (!this._endTold) {
      this._endTold = true;
      this._emit('ended', event);
    }
  };

  Chat.prototype._ack = function (f) {
    for (var i = 0; i < this._pending.length; i++) {
      if (this._pending[i].client_msg_id === f.client_msg_id) {
        var m = this._pending.splice(i, 1)[0];
        m.resolve({ seq: f.seq, clientMsgId: f.client_msg_id, duplicate: !!f.duplicate });
        return;
      }
    }
  };

  Chat.prototype._error = function (f) {
    var e = { code: f.code, message: f.message, clientMsgId: f.client_msg_id };
    if (f.code === 'not_stored' && f.client_msg_id) {
      // The server asks for it again: it stays pending and goes out with the same id.
      var self = this;
      setTimeout(function () {
        self._pending.forEach(function (m) {
          if (m.client_msg_id === f.client_msg_id) self._sendFrame({ type: 'send', client_msg_id: m.client_msg_id, text: m.text });
        });
      }, RESEND_MS);
      return;
    }
    if (f.client_msg_id) {
      for (var i = 0; i < this._pending.length; i++) {
        if (this._pending[i].client_msg_id === f.client_msg_id) {
          this._pending.splice(i, 1)[0].reject(new ParleyError(422, { code: f.code, detail: f.message }));
          return;
        }
      }
    }
    this._emit('error', e);
  };

  Chat.prototype._failPending = function (err) {
    var pending = this._pending;
    this._pending = [];
    pending.forEach(function (m) {
      m.reject(err);
    });
  };

  Chat.prototype._sendFrame = function (frame) {
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  };

  /** Sends a message; resolves with `{seq}` once Parley has stored it. */
  Chat.prototype.send = function (text) {
    var self = this;
    if (this.ended) return Promise.reject(new ParleyError(409, { code: 'conversation_ended', detail: 'the chat has ended' }));
    if (this._closed) return Promise.reject(new ParleyError(0, { code: 'connection_closed', detail: 'the chat was closed' }));
    return new Promise(function (resolve, reject) {
      var m = { client_msg_id: newId(), text: String(text), resolve: resolve, reject: reject };
      self._pending.push(m);
      self._sendFrame({ type: 'send', client_msg_id: m.client_msg_id, text: m.text });
    });
  };

  /** Tells the agent the visitor is typing (call at most every few seconds while they type). */
  Chat.prototype.typing = function () {
    this._sendFrame({ type: 'typing' });
  };

  /** Every entry up to `seq` was on screen while the visitor could see it. */
  Chat.prototype.markRead = function (seq) {
    var n = Number(seq || this.lastSeq);
    if (n > 0) this._sendFrame({ type: 'read', seq: n });
  };

  /** Sends a file (a File or Blob); resolves with `{seq, attachment}` once stored. */
  Chat.prototype.sendFile = function (file, name) {
    var fileName = name || (file && file.name) || 'file';
    var path =
      '/api/v1/widget/conversations/' +
      encodeURIComponent(this.conversationId) +
      '/attachments?client_msg_id=' +
      encodeURIComponent(newId()) +
      '&name=' +
      encodeURIComponent(fileName);
    return request('POST', this.base + path, file, this.token, 'application/octet-stream');
  };

  /** The URL to download an attachment of an entry (send the token as a Bearer header). */
  Chat.prototype.download = function (attachmentId) {
    var path =
      '/api/v1/widget/conversations/' +
      encodeURIComponent(this.conversationId) +
      '/attachments/' +
      encodeURIComponent(attachmentId);
    return fetch(this.base + path, { headers: { Authorization: 'Bearer ' + this.token }, credentials: 'omit' }).then(
      function (res) {
        if (!res.ok) throw new ParleyError(res.status, null);
        return res.blob();
      }
    );
  };

  /** The whole chat as plain text, in the IANA time zone `tz` (the browser's by default). */
  Chat.prototype.transcript = function (tz) {
    var zone = tz;
    if (!zone) {
      try {
        zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      } catch (e) {
        zone = '';
      }
    }
    var path =
      '/api/v1/widget/conversations/' +
      encodeURIComponent(this.conversationId) +
      '/transcript' +
      (zone ? '?tz=' + encodeURIComponent(zone) : '');
    return request('GET', this.base + path, undefined, this.token);
  };

  /** Ends the chat for both sides (once connected, if it is reconnecting now). */
  Chat.prototype.end = function () {
    if (!this._sendFrame({ type: 'end' })) this._endWanted = true;
  };

  /** Closes the connection without ending the chat (resume it later with `session()`). */
  Chat.prototype.close = function () {
    this._closed = true;
    clearTimeout(this._timer);
    if (this._ws) this._ws.close(1000, 'closed by the page');
    this._ws = null;
    this._failPending(new ParleyError(0, { code: 'connection_closed', detail: 'the chat was closed' }));
    this._setStatus('closed');
  };

  function language(options) {
    if (options.language) return String(options.language);
    var nav = root.navigator && root.navigator.language;
    return /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$/.test(String(nav || '')) ? String(nav) : undefined;
  }

  var ParleyChat = {
    version: 1,
    ParleyError: ParleyError,

    /**
     * Starts a chat from the pre-chat form. Rejects with a ParleyError (e.g. `validation_failed`
     * with field paths such as `/email`, or `origin_not_allowed` on a website the service does
     * not allow).
     */
    start: function (options) {
      var o = options || {};
      var base = trimBase(o.base);
      var form = {
        contact_id: o.contactId,
        widget_key: o.widgetKey,
        display_name: o.displayName,
        email: o.email,
        privacy_consent: o.privacyConsent === true
      };
      if (o.firstMessage) form.first_message = String(o.firstMessage);
      var lang = language(o);
      if (lang) form.language = lang;
      return request('POST', base + '/api/v1/widget/conversations', form).then(function (r) {
        var chat = new Chat(base, {
          conversationId: r.conversation_id,
          token: r.visitor_token,
          serviceName: r.service_name,
          lastSeq: 0
        });
        chat._connect();
        return chat;
      });
    },

    /** Takes a chat up again from `chat.session()` (after a page reload, say). */
    resume: function (session) {
      var s = session || {};
      var chat = new Chat(trimBase(s.base), s);
      chat._connect();
      return chat;
    }
  };

  root.ParleyChat = ParleyChat;
})(typeof window !== 'undefined' ? window : this);
