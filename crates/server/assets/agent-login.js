/* Parley agent sign-in (/agent/login). No inline script: the page runs under script-src 'self'. */
(function () {
  'use strict';

  var form = document.getElementById('login');
  var errorBox = document.getElementById('login-error');
  var button = document.getElementById('sign-in');
  var FIELDS = ['tenant', 'email', 'password'];

  function input(name) {
    return document.getElementById(name);
  }
  function setFieldError(name, msg) {
    var e = form.querySelector('[data-error-for="' + name + '"]');
    if (e) e.textContent = msg || '';
    if (msg) input(name).setAttribute('aria-invalid', 'true');
    else input(name).removeAttribute('aria-invalid');
  }
  function clearErrors() {
    errorBox.textContent = '';
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

  // Prefill the organisation from ?tenant=…
  var tenant = new URLSearchParams(location.search).get('tenant');
  if (tenant) {
    input('tenant').value = tenant;
    input('email').focus();
  } else {
    input('tenant').focus();
  }

  FIELDS.forEach(function (f) {
    input(f).addEventListener('input', function () {
      setFieldError(f, '');
    });
  });

  function validate() {
    var first = null;
    var msgs = {
      tenant: 'Please enter your organisation.',
      email: 'Please enter your e-mail address.',
      password: 'Please enter your password.'
    };
    FIELDS.forEach(function (f) {
      if (!input(f).value.trim()) {
        setFieldError(f, msgs[f]);
        if (!first) first = f;
      }
    });
    if (first) {
      errorBox.textContent = 'Please fill in all fields.';
      input(first).focus();
      return false;
    }
    return true;
  }

  function showProblem(p, status) {
    p = p && typeof p === 'object' ? p : {};
    var errors = Array.isArray(p.errors) ? p.errors : [];
    var first = null;
    errors.forEach(function (e) {
      var name = String((e && e.path) || '').replace(/^\//, '');
      if (FIELDS.indexOf(name) >= 0) {
        setFieldError(name, sentence(e.message || 'Not valid'));
        if (!first) first = name;
      }
    });
    var msg;
    if (status === 401 || p.code === 'unauthorized') msg = sentence(p.detail || 'Wrong organisation, e-mail or password');
    else if (status === 429) msg = sentence(p.detail || 'Too many attempts. Please wait a moment and try again');
    else if (errors.length) msg = 'Please check the highlighted fields.';
    else msg = sentence(p.detail || p.title || 'Sign-in failed (' + status + '). Please try again');
    errorBox.textContent = msg;
    if (first) input(first).focus();
    else if (status === 401) {
      input('password').value = '';
      input('password').focus();
    }
  }

  var busy = false;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (busy) return;
    clearErrors();
    if (!validate()) return;
    busy = true;
    button.disabled = true;
    button.textContent = 'Signing in…';
    fetch('/api/v1/agent/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, application/problem+json' },
      body: JSON.stringify({
        tenant: input('tenant').value.trim(),
        email: input('email').value.trim(),
        password: input('password').value
      })
    })
      .then(function (res) {
        if (res.status === 200) {
          location.href = '/agent';
          return null;
        }
        return res.text().then(function (t) {
          var data = null;
          try {
            data = t ? JSON.parse(t) : null;
          } catch (e) {
            /* not JSON */
          }
          showProblem(data, res.status);
        });
      })
      .catch(function () {
        errorBox.textContent = 'Could not reach the server. Please check your connection and try again.';
      })
      .then(function () {
        busy = false;
        button.disabled = false;
        button.textContent = 'Sign in';
      });
  });
})();
