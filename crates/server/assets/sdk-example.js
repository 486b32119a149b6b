/*
 * The SDK example's logic: start (or resume after a reload), show every entry as text, send,
 * show the queue position and the agent's typing, end. Everything an entry carries is put in
 * the page with textContent: what people type never becomes markup.
 */
(function () {
  'use strict';
  var app = document.getElementById('app');
  var base = app.getAttribute('data-base');
  var KEY = 'parley.sdk.example.' + app.getAttribute('data-contact-id');
  var $ = function (id) {
    return document.getElementById(id);
  };
  var chat = null;
  var typingTimer = null;

  function setState(text) {
    $('state').textContent = text;
  }

  function line(cls, who, text) {
    var li = document.createElement('li');
    li.className = cls;
    var name = document.createElement('strong');
    name.textContent = who;
    li.appendChild(name);
    li.appendChild(document.createTextNode(' ' + text));
    $('log').appendChild(li);
  }

  function show(entry) {
    if (entry.kind === 'event') {
      var ev = entry.event || {};
      if (ev.type === 'connected') line('event', '', (ev.agent_name || 'An agent') + ' joined');
      else if (ev.type === 'ended') line('event', '', 'The chat has ended');
      return;
    }
    var s = entry.sender || {};
    var who = s.role === 'customer' ? s.name || 'You' : s.role === 'agent' ? s.name || 'Agent' : chat.serviceName || 'Info';
    var text = entry.text || '';
    if (entry.attachment) text += (text ? ' ' : '') + '[file: ' + entry.attachment.name + ']';
    line('msg msg-' + (s.role || 'system'), who + ':', text);
    if (s.role === 'agent') $('typing').textContent = '';
  }

  function attach(c) {
    chat = c;
    $('start-form').hidden = true;
    $('chat').hidden = false;
    c.on('entry', function (e) {
      show(e);
      c.markRead(e.seq);
      try {
        sessionStorage.setItem(KEY, JSON.stringify(c.session()));
      } catch (err) {
        /* storage off: no resume after a reload */
      }
    });
    c.on('status', function (s) {
      setState(s === 'online' ? 'Connected' : s === 'reconnecting' ? 'Reconnecting…' : s);
    });
    c.on('queue', function (q) {
      $('queue').textContent = 'You are number ' + q.position + ' in the queue';
    });
    c.on('typing', function (t) {
      $('typing').textContent = (t.name || 'The agent') + ' is typing…';
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () {
        $('typing').textContent = '';
      }, 5000);
    });
    c.on('ended', function () {
      $('queue').textContent = '';
      $('composer').hidden = true;
      setState('Ended');
      try {
        sessionStorage.removeItem(KEY);
      } catch (err) {
        /* nothing kept */
      }
    });
    c.on('error', function (e) {
      setState('Error: ' + e.message);
    });
  }

  $('start-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    $('form-error').textContent = '';
    ParleyChat.start({
      base: base,
      contactId: app.getAttribute('data-contact-id'),
      widgetKey: app.getAttribute('data-widget-key'),
      displayName: $('name').value,
      email: $('email').value,
      privacyConsent: $('consent').checked,
      firstMessage: $('first').value
    }).then(attach, function (err) {
      var fields = (err.errors || []).map(function (e) {
        return e.path + ': ' + e.message;
      });
      $('form-error').textContent = err.message + (fields.length ? ' (' + fields.join('; ') + ')' : '');
    });
  });

  $('composer').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var text = $('text').value.trim();
    if (!text || !chat) return;
    $('text').value = '';
    chat.send(text).catch(function (err) {
      setState('Not sent: ' + err.message);
    });
  });
  var lastTyping = 0;
  $('text').addEventListener('input', function () {
    if (chat && Date.now() - lastTyping > 3000) {
      lastTyping = Date.now();
      chat.typing();
    }
  });
  $('end').addEventListener('click', function () {
    if (chat) chat.end();
  });

  // After a reload: the whole chat again (from seq 0), then live.
  try {
    var kept = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (kept && kept.token) {
      kept.lastSeq = 0;
      attach(ParleyChat.resume(kept));
    }
  } catch (err) {
    /* nothing to resume */
  }
})();
