/*
 * Parley chat widget loader.
 *
 * Paste into any page:
 *   <script src="{BASE}/widget.js" data-contact-id="…" data-widget-key="…" async></script>
 * Optional: data-lang="de" (the chat's language; the visitor's browser language otherwise),
 * data-open="true" (open at once), data-unavailable-text="…" (shown where the chat may not run).
 *
 * Adds a launcher button and an iframe (the chat itself lives in the iframe, on the Parley
 * origin, so the host page's CSS and scripts cannot touch it). Only `window.Parley` is exported.
 */
(function () {
  'use strict';

  // `currentScript` is set for classic scripts, async ones included; the selector is a fallback
  // for odd loaders that inject the tag themselves.
  var script = document.currentScript;
  if (!script || !script.hasAttribute('data-contact-id')) {
    script =
      document.querySelector('script[data-contact-id][src*="widget.js"]') ||
      document.querySelector('script[data-contact-id]');
  }
  if (!script || !script.src) return;
  if (window.Parley && window.Parley.loaded) return; // snippet pasted twice

  var contactId = script.getAttribute('data-contact-id') || '';
  var widgetKey = script.getAttribute('data-widget-key') || '';
  var openAtStart = script.getAttribute('data-open') === 'true';
  // The chat's language (e.g. `de`); the visitor's browser language when absent.
  var lang = script.getAttribute('data-lang') || '';
  // What to say on a website the service does not allow, in the page's own words if given.
  var unavailableText = script.getAttribute('data-unavailable-text') || 'Chat is not available on this website.';

  var srcUrl = new URL(script.src, document.baseURI);
  var baseOrigin = srcUrl.origin;
  var base = baseOrigin + srcUrl.pathname.replace(/\/widget\.js$/, '');
  var frameSrc =
    base +
    '/widget/frame?contact_id=' +
    encodeURIComponent(contactId) +
    '&widget_key=' +
    encodeURIComponent(widgetKey) +
    (lang ? '&lang=' + encodeURIComponent(lang) : '');

  // Remember across reloads of the host page whether the visitor had the chat open.
  var OPEN_KEY = 'parley.open.' + contactId;
  function rememberOpen(open) {
    try {
      if (open) window.sessionStorage.setItem(OPEN_KEY, '1');
      else window.sessionStorage.removeItem(OPEN_KEY);
    } catch (e) {
      /* storage disabled: not important */
    }
  }
  function wasOpen() {
    try {
      return window.sessionStorage.getItem(OPEN_KEY) === '1';
    } catch (e) {
      return false;
    }
  }

  var ACCENT = '#3b5bdb';
  var Z = '2147483000';
  var FONT =
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';

  // Inline `!important` styles after `all: initial`, so the host page's CSS (e.g. a global
  // `button {}` rule) cannot restyle us. CSSOM writes are allowed under a strict style CSP.
  function css(el, props) {
    for (var k in props) {
      if (Object.prototype.hasOwnProperty.call(props, k)) el.style.setProperty(k, props[k], 'important');
    }
  }

  var launcher, frame, dot;
  var label = document.createElement('span');
  label.textContent = 'Chat with us';
  var isOpen = false;
  var mobile = window.matchMedia ? window.matchMedia('(max-width: 479px)') : { matches: false };

  function layout() {
    css(launcher, {
      display: isOpen && mobile.matches ? 'none' : 'inline-flex'
    });
    if (!isOpen) {
      css(frame, { display: 'none' });
      return;
    }
    if (mobile.matches) {
      // Full screen on phones; the frame has its own minimise button.
      css(frame, {
        display: 'block',
        top: '0',
        left: '0',
        right: '0',
        bottom: '0',
        width: '100%',
        height: '100%',
        'max-height': 'none',
        'border-radius': '0',
        'box-shadow': 'none'
      });
    } else {
      css(frame, {
        display: 'block',
        top: 'auto',
        left: 'auto',
        right: '20px',
        bottom: '88px',
        width: '380px',
        height: '600px',
        'max-height': 'calc(100% - 108px)',
        'border-radius': '16px',
        'box-shadow': '0 12px 48px rgba(16, 24, 40, 0.22), 0 2px 6px rgba(16, 24, 40, 0.08)'
      });
    }
  }

  function post(type) {
    try {
      frame.contentWindow.postMessage({ type: type }, baseOrigin);
    } catch (e) {
      /* frame not loaded yet */
    }
  }

  function setOpen(open, userAction) {
    isOpen = open;
    frame.hidden = !open;
    launcher.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) css(dot, { display: 'none' });
    layout();
    rememberOpen(open);
    // The chat reports messages as read only while the visitor can see them.
    post(open ? 'parley:shown' : 'parley:hidden');
    if (open && userAction) {
      try {
        frame.focus();
      } catch (e) {
        /* ignore */
      }
      post('parley:focus');
    } else if (!open && userAction) {
      launcher.focus();
    }
  }

  function svgIcon() {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '20');
    svg.setAttribute('height', '20');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute(
      'd',
      'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-4.6 3.5A.9.9 0 0 1 3 20.8V6a2 2 0 0 1 1-2z'
    );
    svg.appendChild(path);
    css(svg, { display: 'block', 'flex-shrink': '0' });
    return svg;
  }

  function mount() {
    if (document.getElementById('parley-launcher')) return;

    launcher = document.createElement('button');
    launcher.id = 'parley-launcher';
    launcher.type = 'button';
    launcher.setAttribute('aria-label', 'Chat with us');
    launcher.setAttribute('aria-controls', 'parley-widget-frame');
    launcher.setAttribute('aria-expanded', 'false');
    css(launcher, {
      all: 'initial',
      position: 'fixed',
      right: '20px',
      bottom: '20px',
      'z-index': Z,
      display: 'inline-flex',
      'align-items': 'center',
      gap: '8px',
      padding: '12px 18px',
      'border-radius': '999px',
      background: ACCENT,
      color: '#ffffff',
      font: '600 15px/1.2 ' + FONT,
      cursor: 'pointer',
      'box-shadow': '0 6px 20px rgba(16, 24, 40, 0.25)',
      'box-sizing': 'border-box'
    });
    launcher.appendChild(svgIcon());
    launcher.appendChild(label);
    // Unread marker, shown when an agent writes while the chat is closed.
    dot = document.createElement('span');
    dot.setAttribute('aria-hidden', 'true');
    css(dot, {
      display: 'none',
      position: 'absolute',
      top: '-2px',
      right: '-2px',
      width: '12px',
      height: '12px',
      'border-radius': '50%',
      background: '#f04438',
      border: '2px solid #ffffff'
    });
    launcher.appendChild(dot);
    launcher.addEventListener('click', function () {
      setOpen(!isOpen, true);
    });
    // Keyboard focus ring (all:initial removed the default one).
    launcher.addEventListener('focus', function () {
      if (launcher.matches(':focus-visible')) css(launcher, { outline: '3px solid rgba(59, 91, 219, 0.45)', 'outline-offset': '2px' });
    });
    launcher.addEventListener('blur', function () {
      css(launcher, { outline: 'none' });
    });

    frame = document.createElement('iframe');
    frame.id = 'parley-widget-frame';
    frame.title = 'Chat';
    frame.hidden = true;
    frame.src = frameSrc;
    css(frame, {
      all: 'initial',
      position: 'fixed',
      'z-index': String(Number(Z) + 1),
      border: '0',
      background: '#ffffff',
      'color-scheme': 'normal',
      display: 'none'
    });

    document.body.appendChild(frame);
    document.body.appendChild(launcher);
    frame.addEventListener('load', function () {
      post(isOpen ? 'parley:shown' : 'parley:hidden');
    });

    if (mobile.addEventListener) mobile.addEventListener('change', layout);
    else if (mobile.addListener) mobile.addListener(layout);

    // Messages from the chat frame: minimise, unread marker.
    window.addEventListener('message', function (ev) {
      if (ev.source !== frame.contentWindow || ev.origin !== baseOrigin) return;
      var type = ev.data && ev.data.type;
      if (type === 'parley:close') setOpen(false, true);
      else if (type === 'parley:texts' && typeof ev.data.label === 'string' && ev.data.label) {
        // The frame speaks the visitor's language; the launcher follows (as text only).
        label.textContent = ev.data.label.slice(0, 60);
        launcher.setAttribute('aria-label', label.textContent);
        frame.title = label.textContent;
      }
      else if (type === 'parley:unread' && !isOpen) css(dot, { display: 'block' });
    });

    setOpen(openAtStart || wasOpen(), false);
  }

  window.Parley = {
    loaded: true,
    open: function () {
      if (frame) setOpen(true, true);
    },
    close: function () {
      if (frame) setOpen(false, false);
    },
    toggle: function () {
      if (frame) setOpen(!isOpen, true);
    }
  };

  // A service may restrict its chat to some websites. Ask from this page (the browser names
  // the page's origin, which a page cannot fake) and explain a refusal instead of showing a
  // frame the browser would block anyway.
  function refuse(detail) {
    var note = document.createElement('div');
    note.id = 'parley-widget-refused';
    note.setAttribute('role', 'status');
    note.textContent = unavailableText;
    css(note, {
      all: 'initial',
      position: 'fixed',
      right: '20px',
      bottom: '20px',
      'z-index': Z,
      background: '#ffffff',
      color: '#1f2933',
      border: '1px solid #d0d7de',
      'border-radius': '8px',
      padding: '10px 14px',
      font: '14px/1.4 ' + FONT,
      'box-shadow': '0 4px 16px rgba(0, 0, 0, 0.12)'
    });
    document.body.appendChild(note);
    if (window.console) window.console.warn('Parley: ' + (detail || 'this chat is not available on this website'));
  }

  function start() {
    var url =
      base +
      '/api/v1/widget/access?contact_id=' +
      encodeURIComponent(contactId) +
      '&widget_key=' +
      encodeURIComponent(widgetKey);
    if (!window.fetch) {
      mount();
      return;
    }
    window.fetch(url, { mode: 'cors', credentials: 'omit' }).then(
      function (res) {
        if (res.status !== 403) {
          mount();
          return;
        }
        res.json().then(
          function (problem) {
            refuse(problem && problem.detail);
          },
          function () {
            refuse();
          }
        );
      },
      // Parley unreachable: the frame shows its own connection error.
      mount
    );
  }

  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
