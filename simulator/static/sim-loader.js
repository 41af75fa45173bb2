/* Picks the page profile and loads its scripts (simulator only; not part of the real page).
 * The server renders the page knobs into #sim-page-config; when it does not, they are read from
 * GET /sim/control/config (locale and the user-agent gate are then resolved here). */
(function () {
  'use strict';
  var BASE = ((document.currentScript && document.currentScript.src) || '/static/sim-loader.js').replace(/sim-loader\.js.*$/, '');
  var DEFAULTS = { profile: '2026', boot_seconds: 4.0, locale: 'auto', version: '2.3000.1030472176', modules: true,
    open_chat_args: 'object', page_heap_mb: 0, cookie_banner: true, unsupported: null };

  function resolveLocale(v) {
    if (v === 'en' || v === 'pt-BR') return v;
    var lang = String(navigator.language || 'en');
    return /^pt/i.test(lang) ? 'pt-BR' : 'en';
  }

  function uaGate(cfg) {
    if (cfg.ua_gate === false) return null;
    var ua = navigator.userAgent || '';
    var min = cfg.min_chrome || 100;
    var m = /Chrome\/(\d+)/.exec(ua);
    if (/HeadlessChrome/.test(ua) || /Electron\//.test(ua) || /^WhatsApp\//.test(ua) || (m && parseInt(m[1], 10) < min)) {
      return { min_chrome: min };
    }
    return null;
  }

  function normalize(cfg, fromServer) {
    var out = {};
    Object.keys(DEFAULTS).forEach(function (k) { out[k] = cfg && cfg[k] !== undefined ? cfg[k] : DEFAULTS[k]; });
    out.profile = out.profile === 'legacy' ? 'legacy' : '2026';
    out.locale = resolveLocale(out.locale);
    if (!fromServer) out.unsupported = uaGate(cfg || {});
    return out;
  }

  function load(cfg) {
    window.__WASimPageConfig = cfg;
    // sim-common.js (window.__WASimCommon: the helpers both pages use) comes first for either profile
    var files = ['sim-common.js'].concat(cfg.profile === 'legacy' ? ['app.js']
      : (cfg.unsupported ? ['wa-i18n.js', 'app2026.js'] : ['wa-i18n.js', 'wa-modules.js', 'app2026.js']));
    var base = BASE;
    files.forEach(function (f) {
      var s = document.createElement('script');
      s.src = base + f;
      s.async = false;
      document.body.appendChild(s);
    });
  }

  var node = document.getElementById('sim-page-config');
  var given = null;
  try { given = node ? JSON.parse(node.textContent || 'null') : null; } catch (e) { given = null; }
  if (given && typeof given === 'object') { load(normalize(given, true)); return; }
  var tries = 0;
  (function fetchConfig() {
    fetch('/sim/control/config', { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (cfg) { load(normalize(cfg, false)); }).catch(function () {
      tries += 1;
      if (tries < 3) setTimeout(fetchConfig, 500);
      else load(normalize(null, false));
    });
  })();
})();
