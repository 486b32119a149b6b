/*
 * Parley's message renderer, shared by the widget frame and the agent workspace: message text
 * with safe links, and attached files.
 *
 * Message text is plain text. The only markup Parley adds is links: http(s) URLs and www.
 * addresses become <a> elements that open in a new tab without a referrer or an opener. Every
 * character of the message reaches the DOM through text nodes, never as HTML, so nothing a
 * sender types can become markup or script; schemes other than http and https (javascript:,
 * data:, …) are never linked.
 */
(function () {
  'use strict';

  // A URL runs to the next whitespace or character that cannot appear unescaped in one.
  var URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'`]+/gi;
  // Punctuation that usually ends the sentence around a URL rather than the URL itself.
  var TRAILING = /[.,;:!?'"*_~]+$/;
  var MAX_LINK_CHARS = 2048;

  // Drops trailing punctuation and a closing bracket that has no opening one inside the URL.
  function trimUrl(url) {
    for (;;) {
      var before = url;
      url = url.replace(TRAILING, '');
      var last = url.charAt(url.length - 1);
      var open = { ')': '(', ']': '[', '}': '{' }[last];
      if (open && url.split(open).length <= url.split(last).length - 1) url = url.slice(0, -1);
      if (url === before) return url;
    }
  }

  // The href for a matched address, or null when it is not a safe http(s) URL.
  function hrefOf(text) {
    var candidate = /^www\./i.test(text) ? 'https://' + text : text;
    if (candidate.length > MAX_LINK_CHARS) return null;
    try {
      var u = new URL(candidate);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
      if (!u.hostname) return null;
      return u.href;
    } catch (e) {
      return null;
    }
  }

  // Appends `text` to `parent` as text nodes and safe links.
  function render(parent, text) {
    var s = String(text == null ? '' : text);
    var at = 0;
    URL_RE.lastIndex = 0;
    var m;
    while ((m = URL_RE.exec(s)) !== null) {
      var raw = trimUrl(m[0]);
      var href = raw && hrefOf(raw);
      if (!href) continue;
      if (m.index > at) parent.appendChild(document.createTextNode(s.slice(at, m.index)));
      var a = document.createElement('a');
      a.href = href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.className = 'link';
      a.textContent = raw;
      parent.appendChild(a);
      at = m.index + raw.length;
      URL_RE.lastIndex = at;
    }
    if (at < s.length) parent.appendChild(document.createTextNode(s.slice(at)));
    return parent;
  }

  function formatSize(bytes) {
    var n = Number(bytes) || 0;
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return Math.round(n / 1024) + ' KB';
    return (n / (1024 * 1024)).toFixed(1) + ' MB';
  }

  // An attached file: images as a picture that opens full size, anything else as a download
  // chip with name and size. `source(attachment)` resolves to the URL to use (the workspace's
  // own cookie-authenticated URL, or an object URL the widget fetched with its token); it is
  // asked when the picture is shown, or on the first click on a document. The name only ever
  // reaches the DOM as text or attribute values.
  function attachment(att, source) {
    var name = String(att.name || 'attachment');
    var a = document.createElement('a');
    a.className = 'file';
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.dataset.attachmentId = String(att.id || '');
    if (/^image\//.test(String(att.content_type))) {
      a.classList.add('file-image');
      a.setAttribute('aria-label', 'Open image ' + name);
      var img = document.createElement('img');
      img.alt = name;
      img.decoding = 'async';
      a.appendChild(img);
      source(att).then(function (url) {
        img.src = url;
        a.href = url;
      });
      return a;
    }
    a.classList.add('file-doc');
    a.href = '#';
    a.setAttribute('download', name);
    var icon = document.createElement('span');
    icon.className = 'file-icon';
    icon.setAttribute('aria-hidden', 'true');
    a.appendChild(icon);
    var label = document.createElement('span');
    label.className = 'file-name';
    label.textContent = name;
    a.appendChild(label);
    var size = document.createElement('span');
    size.className = 'file-size';
    size.textContent = formatSize(att.size);
    a.appendChild(size);
    var resolved = false;
    a.addEventListener('click', function (ev) {
      if (resolved) return;
      ev.preventDefault();
      source(att).then(function (url) {
        resolved = true;
        a.href = url;
        a.click();
      });
    });
    return a;
  }

  window.ParleyText = { render: render, attachment: attachment, formatSize: formatSize };
})();
