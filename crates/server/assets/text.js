/*
 * Parley's message text renderer, shared by the widget frame and the agent workspace.
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

  window.ParleyText = { render: render };
})();
