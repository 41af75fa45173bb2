/* WhatsApp Web simulator page, 2026 profile (the page WhatsApp serves in 2025-2026).
 * Vanilla JS, no external assets. Talks to the server through /sim/api/* (docs/simulator.md).
 * Texts come from wa-i18n.js (one table, en and pt-BR); the page's own modules (window.require) from
 * wa-modules.js. The legacy (2021-2023) page is app.js; sim-loader.js picks one of them. */
(function () {
  'use strict';

  var CFG = window.__WASimPageConfig || {};
  var I18N = window.__WASimI18n || {};
  var LOCALE = CFG.locale === 'pt-BR' ? 'pt-BR' : 'en';
  var C = window.__WASimCommon;  // helpers shared with the legacy page (sim-common.js)
  var el = C.el, api = C.api, toast = C.toast, saveLogin = C.saveLogin, clearLogin = C.clearLogin;
  var newMsgId = C.newMsgId, fmtTime = C.fmtTime, fmtStamp = C.fmtStamp, fmtSize = C.fmtSize, fmtMb = C.fmtMb;
  var LS_COOKIE = 'WACookieConsent';
  var MEDIA_ACCEPT = 'image/*,video/mp4,video/3gpp,video/quicktime';
  // stage minimums of WAWebDebouncedLoadingScreen.react (ms); boot_seconds is split over them in proportion
  var BOOT_STAGES = [['INITIAL_LOAD', 500], ['CONNECTING', 1500], ['DOWNLOADING', 450], ['PAUSE', 450], ['ORGANIZING', 800]];
  var COUNTRIES = [['IN', '91'], ['BR', '55'], ['US', '1'], ['MX', '52'], ['GB', '44'], ['DE', '49'], ['ES', '34'],
    ['PT', '351'], ['ID', '62'], ['FR', '33'], ['IT', '39'], ['AR', '54'], ['CO', '57'], ['NG', '234'], ['ZA', '27'], ['PK', '92']];

  var pollMeta = document.querySelector('meta[name="sim-poll-ms"]');
  var S = {
    cid: null, since: 0, rev: -1, view: null, stopped: false, netFails: 0, localeFixed: false,
    pollMs: pollMeta ? (parseInt(pollMeta.content, 10) || 200) : 200, pollTimer: null, polling: false,
    limits: { media_max_mb: 16, doc_max_mb: 100 }, snap: null, loadCause: 'navigation',
    intent: null, qrShown: null, codeShown: null, landingMode: null, country: COUNTRIES[0], cookieDismissed: false,
    appNode: null, chatsV: -1, chats: [], chatRows: new WeakMap(), searchQuery: '', openChat: null,
    rows: new Map(), sent: new Map(), attachMenu: null, preview: null, menu: null, modals: {},
    onboardingAcked: false, mainShown: false, me: null, login: null
  };

  // --------------------------------------------------------------- texts
  function t(key, params) {
    var table = I18N[LOCALE] || I18N.en || {};
    var s = table[key];
    if (s === undefined) s = (I18N.en || {})[key];
    if (s === undefined) s = key;
    if (params) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return params[k] !== undefined && params[k] !== null ? String(params[k]) : m; });
    }
    return s;
  }

  // --------------------------------------------------------------- icons
  function wdsSvg(name, path, size) {
    var sz = size || 24;
    return '<svg viewBox="0 0 24 24" width="' + sz + '" height="' + sz + '" preserveAspectRatio="xMidYMid meet" fill="none">' +
      '<title>' + name + '</title><path fill="currentColor" d="' + path + '"></path></svg>';
  }
  var P = {
    pending: 'M12 4a8 8 0 1 0 0 16 8 8 0 0 0 0-16zm0 14.4a6.4 6.4 0 1 1 0-12.8 6.4 6.4 0 0 1 0 12.8zM12.8 8h-1.6v4.8l4.2 2.5.8-1.3-3.4-2z',
    delivered: 'M9.6 16.2 5.4 12l-1.4 1.4 5.6 5.6 12-12-1.4-1.4z',
    read: 'M17.7 7.3 16.3 5.9l-6.3 6.3 1.4 1.4zm4.2-1.4L11.4 16.4 7.2 12.2 5.8 13.6l5.6 5.6 11.9-11.9zM.4 13.6 6 19.2l1.4-1.4-5.6-5.6z',
    send: 'M3.4 20.4 20.9 12.9a1 1 0 0 0 0-1.8L3.4 3.6a1 1 0 0 0-1.4 1.1L3.9 11l9.1 1-9.1 1-1.9 6.3a1 1 0 0 0 1.4 1.1z',
    mic: 'M12 15a3.5 3.5 0 0 0 3.5-3.5v-6a3.5 3.5 0 1 0-7 0v6A3.5 3.5 0 0 0 12 15zm6-3.5a6 6 0 0 1-12 0H4.5a7.5 7.5 0 0 0 6.7 7.4V22h1.6v-3.1a7.5 7.5 0 0 0 6.7-7.4z',
    plus: 'M11 11V5h2v6h6v2h-6v6h-2v-6H5v-2z',
    menu: 'M12 7a2 2 0 1 0-.01-4.01A2 2 0 0 0 12 7zm0 2a2 2 0 1 0 .01 4.01A2 2 0 0 0 12 9zm0 6a2 2 0 1 0 .01 4.01A2 2 0 0 0 12 15z',
    search: 'M15.9 14.3h-.8l-.3-.3a6.5 6.5 0 1 0-.7.7l.3.3v.8l5 5 1.5-1.5-5-5zm-6 0a4.5 4.5 0 1 1 0-9 4.5 4.5 0 0 1 0 9z',
    chevron: 'M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6z',
    refresh: 'M17.6 6.4A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4l-2.4 2.4z',
    doc: 'M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5z',
    sticker: 'M12 2a10 10 0 1 0 10 10V11h-5a6 6 0 0 1-6-6V2zm2 .2V5a4 4 0 0 0 4 4h2.8A10 10 0 0 0 14 2.2z',
    media: 'M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5z',
    x: 'M19.1 17.2 13.9 12l5.2-5.2-1.9-1.9-5.2 5.2-5.2-5.2-1.9 1.9 5.2 5.2-5.2 5.2 1.9 1.9 5.2-5.2 5.2 5.2z',
    lock: 'M12 2a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-8a2 2 0 0 0-2-2h-1V7a5 5 0 0 0-5-5zm0 2a3 3 0 0 1 3 3v3H9V7a3 3 0 0 1 3-3z',
    alert: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-2h2zm0-4h-2V7h2z'
  };
  var LOGO = '<svg viewBox="0 0 39 39" width="39" height="39"><circle cx="19.5" cy="19.5" r="19" fill="#25D366"/><path fill="#fff" d="M19.6 8.4a11 11 0 0 0-9.5 16.6L8.6 30.6l5.8-1.5a11 11 0 1 0 5.2-20.7zm0 20a9 9 0 0 1-4.6-1.3l-.3-.2-3.4.9.9-3.3-.2-.4a9 9 0 1 1 7.6 4.3z"/></svg>';

  // ------------------------------------------------------------- helpers
  function icon(name, path, extra) { return C.icon(name, wdsSvg(name, path), extra); }

  function noop() {}

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
  function normalizeNl(s) { return String(s === null || s === undefined ? '' : s).replace(/\r\n?/g, '\n'); }

  // ------------------------------------------------- modules (wa-modules.js)
  var NOOP_MODULES = {
    install: noop, uninstall: noop, setRestriction: noop, setVersion: noop, setEnabled: noop, setOpenChatArgs: noop, setSocketState: noop,
    setHasSynced: noop, setStream: noop, setRef: noop, setMe: noop, knowContact: noop, upsertChat: noop,
    getChat: noop, addMsg: noop, setAck: noop, emitCmd: noop, chatInfo: function () { return null; }
  };
  var bridge = {
    takeover: function () {
      if (!S.cid) return Promise.reject(new Error('not connected'));
      return api('takeover', { cid: S.cid }).then(function (s) { applySnap(s); return true; });
    },
    logout: function (from) { return doLogout(from || 'model'); },
    reconnect: function () { pollNow(); return true; },
    refreshQR: function () {
      if (!S.cid) return Promise.reject(new Error('not connected'));
      return api('qr/reload', { cid: S.cid }).then(function (s) { applySnap(s); return true; });
    },
    openChat: function (chat) { return openChatModel(chat); },
    exists: function (phone) {
      if (!S.cid) return Promise.reject(new Error('not connected'));
      return api('exists', { cid: S.cid, phone: String(phone) });
    },
    seen: function (chat) {
      if (!S.cid) return Promise.reject(new Error('not connected'));
      var info = M.chatInfo(chat) || {};
      return api('chat/seen', { cid: S.cid, phone: info.phone, wid: info.wid, via: 'model' });
    }
  };
  var M = (!CFG.unsupported && window.__WASimModules) ? window.__WASimModules.create(bridge, CFG) : NOOP_MODULES;
  M.install(CFG.version || '2.3000.1030472176');

  // ---------------------------------------------------------------- modals
  // Markup of module WAWebModal.react: backdrop > [role=dialog][aria-modal] > popup[aria-label] > body (h1, text, buttons)
  function openModal(key, o) {
    closeModal(key);
    var bodyText = typeof o.body === 'string' ? o.body : (o.body ? o.body.textContent : '');
    var actions = null;
    if (o.buttons && o.buttons.length) {
      actions = el('div', { class: 'wa-modal-actions' });
      o.buttons.forEach(function (b) {
        var btn = el('button', { type: 'button', class: 'wa-btn ' + (b.primary ? 'wa-btn-primary' : 'wa-btn-secondary') }, b.label);
        btn.addEventListener('click', function (e) { e.stopPropagation(); b.onClick(btn); });
        actions.appendChild(btn);
      });
    }
    var popup = el('div', { 'data-animate-modal-popup': 'true', 'aria-label': [o.title, bodyText].filter(Boolean).join(' '),
      class: 'wa-modal-popup' + (o.cls ? ' ' + o.cls : '') }, [
      el('div', { 'data-animate-modal-body': 'true', class: 'wa-modal-body' }, [
        o.title ? el('h1', { class: 'wa-modal-title' }, o.title) : null,
        el('div', { class: 'wa-modal-text' }, o.body),
        actions
      ])
    ]);
    var backdrop = el('div', { 'data-animate-modal-backdrop': 'true', class: 'wa-modal-backdrop', 'data-modal-key': key }, [
      el('div', { role: 'dialog', 'aria-modal': 'true', class: 'wa-modal-dialog' }, [popup])
    ]);
    document.getElementById('app').appendChild(backdrop);
    S.modals[key] = backdrop;
    return backdrop;
  }

  function closeModal(key) {
    var m = S.modals[key];
    if (m) { m.remove(); delete S.modals[key]; }
  }

  function closeAllModals() { Object.keys(S.modals).forEach(closeModal); }

  // ----------------------------------------------------------------- views
  function setView(name, build) {
    if (S.view === name) return false;
    closeMenu();
    closeAllModals();
    var root = document.getElementById('app');
    if (S.appNode && S.appNode.parentNode) S.appNode.remove();  // MAIN is kept (open chat, composer) while a screen replaces it
    root.textContent = '';
    S.view = name;
    build(root);
    return true;
  }

  function loadingScreen() {
    var progress = el('progress', { value: '0', max: '100' });
    var node = el('div', { class: 'startup startup-2026', 'data-testid': 'startup' }, [
      el('div', { class: 'startup-logo', html: LOGO }), progress,
      el('div', { class: 'startup-title' }, t('loading_title'))
    ]);
    return { node: node, progress: progress };
  }

  function showLoading() {
    setView('loading', function (root) {
      var scr = loadingScreen();
      S.progress = scr.progress;
      root.appendChild(scr.node);
    });
  }

  // ------------------------------------------------------------------ boot
  function selfReload() {
    if (S.reloading) return;
    S.reloading = true;
    S.stopped = true;
    C.markSelfReload();
    location.reload();
  }

  function boot() {
    S.loadCause = C.loadCause(true);
    S.intent = C.sendIntent();
    if (CFG.unsupported) { renderUnsupported(CFG.unsupported, false); return; }
    C.setHeap(CFG.page_heap_mb);
    showLoading();
    M.setSocketState('OPENING');
    M.setStream('OPENING', 'SYNCING', false);
    var total = Math.max(0, Number(CFG.boot_seconds === undefined ? 4 : CFG.boot_seconds)) * 1000;
    var stages = BOOT_STAGES;
    if (Array.isArray(CFG.boot_stages) && CFG.boot_stages.length) {
      stages = CFG.boot_stages.map(function (x) { return [x.stage, Math.max(0, Number(x.seconds) || 0) * 1000]; });
    }
    var sum = stages.reduce(function (a, s) { return a + s[1]; }, 0) || 1;
    var started = Date.now();
    var tick = setInterval(function () {
      if (S.progress && S.view === 'loading') S.progress.value = Math.min(100, Math.round(100 * (Date.now() - started) / Math.max(1, total)));
    }, 100);
    var at = 0;
    stages.forEach(function (stage) {
      at += total * stage[1] / sum;
      var done = at;
      setTimeout(function () { if (S.progress && S.view === 'loading') S.progress.value = Math.round(100 * done / Math.max(1, total)); }, done);
    });
    setTimeout(function () { clearInterval(tick); connect(); }, total);
  }

  function connect() {
    C.connect(function () { return { load_cause: S.loadCause, language: navigator.language || null }; }, function (snap) {
      S.cid = snap.cid;
      S.since = snap.seq;
      applySnap(snap);
      pollLoop();
    });
  }

  // -------------------------------------------------------------- snapshot
  var WHOLE_SCREENS = ['ANOTHER_SESSION', 'CONFLICT', 'TEMP_BAN', 'OFFLINE', 'TOS_BLOCK', 'DEPRECATED_VERSION', 'APP_LOCKED'];

  function screenOf(s) {
    if (s.screen !== undefined) return s.screen || null;
    // a server without the screen field: legacy states mapped as the 2026 page shows them
    if (s.state === 'CONFLICT') return 'CONFLICT';
    if (s.state === 'TIMEOUT' || s.offline) return 'OFFLINE';
    return null;
  }

  function socketStateOf(s) {
    if (s.socket_state) return s.socket_state;
    return s.state === 'PAIRING' ? 'PAIRING' : s.state;
  }

  function streamOf(s, screen) {
    if (screen === 'CONFLICT' || screen === 'ANOTHER_SESSION') return ['CONFLICT', 'CONFLICT', false];
    if (screen === 'OFFLINE') return ['TIMEOUT', 'OFFLINE', false];
    if (screen === 'TOS_BLOCK') return ['NORMAL', 'TOS_BLOCK', false];
    if (screen === 'DEPRECATED_VERSION') return ['NORMAL', 'DEPRECATED_VERSION', true];
    if (screen === 'CONNECTING') return ['CONNECTING', 'SYNCING', false];
    if (s.state === 'UNPAIRED' || s.state === 'UNPAIRED_IDLE') return ['NORMAL', 'QR', false];
    if (s.state === 'PAIRING') return ['SYNCING', 'SYNCING', false];
    return ['NORMAL', 'MAIN', false];
  }

  function applyKnobs(s) {
    if (s.version) M.setVersion(s.version);
    if (s.modules !== undefined) M.setEnabled(s.modules !== false);
    if (s.open_chat_args) M.setOpenChatArgs(s.open_chat_args);
    if (s.page_heap_mb !== undefined) C.setHeap(s.page_heap_mb);
    if (s.limits) S.limits = s.limits;
    if (s.poll_ms) S.pollMs = s.poll_ms;
    if (s.me) { S.me = s.me; M.setMe(s.me); }
  }

  function applySnap(s) {
    if (!s || s.cid !== S.cid || S.stopped) return;
    S.snap = s;
    if (!S.localeFixed && (s.locale === 'en' || s.locale === 'pt-BR')) LOCALE = s.locale;
    if (!S.localeFixed) { S.localeFixed = true; document.documentElement.lang = LOCALE === 'pt-BR' ? 'pt-BR' : 'en'; }
    if (s.logged_out) { onLoggedOut(s.logout_reason || 'phone'); return; }
    applyKnobs(s);
    if (s.reload && s.reload.id !== undefined && s.reload.id !== null && !C.reloadSeen(s.reload.id)) { selfReload(); return; }
    if (typeof s.rev !== 'number' || s.rev >= S.rev) {
      if (typeof s.rev === 'number') S.rev = s.rev;
      render(s);
    }
    if (S.stopped) return;
    if (typeof s.seq === 'number' && s.seq > S.since) S.since = s.seq;
    if (!S.appNode) return;
    (s.events || []).forEach(handleEvent);
    Object.keys(s.acks || {}).forEach(function (id) { updateAck(id, s.acks[id]); });
    if (s.chats) { renderChats(s.chats); S.chatsV = s.chats_v; }
  }

  function render(s) {
    var screen = screenOf(s);
    var st = streamOf(s, screen);
    M.setStream(st[0], st[1], st[2]);
    M.setSocketState(socketStateOf(s));
    M.setRestriction(s.restriction);
    if (screen === 'UNSUPPORTED_BROWSER') { renderUnsupported(s.screen_info || {}, true); return; }
    if (screen && WHOLE_SCREENS.indexOf(screen) >= 0) { renderScreen(screen, s); return; }
    if (s.state === 'UNPAIRED' || s.state === 'UNPAIRED_IDLE') { renderLanding(s); return; }
    if (s.state === 'PAIRING' || screen === 'CONNECTING') { renderSyncing(s, screen === 'CONNECTING'); return; }
    renderApp(s);
  }

  function renderSyncing(s, connecting) {
    showLoading();
    if (s.state === 'PAIRING' && typeof s.sync_progress === 'number' && S.progress) S.progress.value = Math.round(s.sync_progress * 100);
    if (connecting) {
      if (!S.modals.connecting) {
        openModal('connecting', { title: t('connecting_title'), body: t('connecting_body'), buttons: [
          { label: t('log_out'), onClick: function () { doLogout('connecting'); } }
        ] });
      }
    } else {
      closeModal('connecting');
    }
  }

  // ----------------------------------------------------------- login page
  function buildLanding(root) {
    S.landingMain = el('div', { class: 'wa-landing-main' });
    root.appendChild(el('div', { class: 'wa-landing' }, [
      el('header', { class: 'wa-landing-header' }, [
        el('span', { class: 'wa-landing-logo', 'data-icon': 'wa-wordmark-refreshed', html: LOGO }),
        el('span', { class: 'wa-landing-brand' }, 'WhatsApp')
      ]),
      el('div', { class: 'wa-landing-card' }, [S.landingMain]),
      el('div', { class: 'wa-landing-footer' }, [icon('lock-refreshed', P.lock, { class: 'wa-lock' }), ' ', t('footer_e2e')])
    ]));
    S.landingMode = null;
    maybeCookieDialog();
  }

  function cookieBanner() {
    var s = S.snap || {};
    if (s.cookie_banner !== undefined) return s.cookie_banner !== false;
    return CFG.cookie_banner !== false;
  }

  function maybeCookieDialog() {
    var consent = null;
    try { consent = localStorage.getItem(LS_COOKIE); } catch (e) { consent = null; }
    if (!cookieBanner() || consent === 'accepted' || S.cookieDismissed) return;
    openModal('cookie', { title: t('cookie_title'), body: t('cookie_body'), buttons: [
      { label: t('reject'), onClick: function () {
        S.cookieDismissed = true;
        closeModal('cookie');
        api('cookies/accept', { cid: S.cid, accepted: false }).catch(noop);
      } },
      { label: t('accept'), primary: true, onClick: function () {
        try { localStorage.setItem(LS_COOKIE, 'accepted'); } catch (e) { /* ignore */ }
        closeModal('cookie');
        api('cookies/accept', { cid: S.cid, accepted: true }).catch(noop);
      } }
    ] });
  }

  function switchMode(mode) {
    api('mode', { cid: S.cid, mode: mode }).then(applySnap).catch(function (e) { toast(e.message); });
  }

  function plainLink(text, onClick) {
    // a plain div with the text (no role), as the 2024-26 page has it
    var d = el('div', { class: 'wa-link-div', tabindex: '0' }, text);
    d.addEventListener('click', onClick);
    return d;
  }

  function buildQrPanel(c) {
    S.qrBox = el('div', { class: 'wa-qr-box' });
    c.appendChild(el('div', { class: 'wa-login-row' }, [
      el('div', { class: 'wa-login-text' }, [
        el('h1', { class: 'wa-login-title' }, t('login_title')),
        el('div', { class: 'wa-login-sub' }, t('login_sub')),
        el('ol', { class: 'wa-login-steps' }, [
          el('li', null, t('login_step1')), el('li', null, t('login_step2')),
          el('li', null, t('login_step3')), el('li', null, t('login_step4'))
        ]),
        el('div', { class: 'wa-login-alt' }, [plainLink(t('login_with_phone'), function () { switchMode('phone'); })])
      ]),
      el('div', { class: 'wa-login-qr' }, [S.qrBox])
    ]));
  }

  function updateQr(s) {
    C.updateQr(S, s, { label: t('qr_label'), onShown: function (payload) { M.setRef(String(payload).split(',')[0]); },
      reloadIcon: function () { return el('span', { 'data-icon': 'refresh-large', html: wdsSvg('refresh-large', P.refresh, 44) }); },
      reloadText: t('qr_reload'), onSnap: applySnap });
  }

  function countryName(c) { return t('c_' + c[0]); }

  function buildPhonePanel(c) {
    var input = el('input', { type: 'text', 'aria-label': t('phone_input'), inputmode: 'tel', autocomplete: 'off',
      dir: 'ltr', class: 'wa-phone-input' });
    input.value = '+' + S.country[1] + ' ';
    input.addEventListener('input', function () {
      // a "+" typed after the prefilled "+<cc> " starts the number over (its own country code)
      var v = input.value, i = v.lastIndexOf('+');
      if (i > 0) input.value = v.slice(i);
    });
    var err = el('div', { class: 'phone-error', role: 'status' });
    var next = el('button', { type: 'button', class: 'wa-btn wa-btn-primary btn-next' }, [el('div', null, t('next'))]);
    var countryLabel = el('span', { class: 'wa-country-name' });
    var countryBtn = el('button', { type: 'button', class: 'wa-country-btn' }, [
      countryLabel, el('span', { class: 'wa-chevron', html: wdsSvg('wds-ic-chevron-down', P.chevron, 20) })
    ]);
    var list = null;
    function showCountry() {
      countryBtn.setAttribute('aria-label', t('country_selected', { name: countryName(S.country) }));
      countryLabel.textContent = countryName(S.country) + ' (+' + S.country[1] + ')';
    }
    function closeList() { if (list) { list.remove(); list = null; } }
    function pick(country) {
      var oldPrefix = '+' + S.country[1];
      S.country = country;
      var v = input.value.replace(/^\s+/, '');
      var rest = v.indexOf(oldPrefix) === 0 ? v.slice(oldPrefix.length).replace(/^\s+/, '') : v.replace(/^\+\d*\s*/, '');
      input.value = '+' + country[1] + ' ' + rest;
      showCountry();
      closeList();
      input.focus();
    }
    countryBtn.addEventListener('click', function (e) {
      e.stopPropagation();
      if (list) { closeList(); return; }
      var search = el('input', { type: 'text', 'aria-label': t('country_search'), placeholder: t('country_search'), class: 'wa-country-search' });
      var items = el('div', { class: 'wa-country-items', role: 'list', 'aria-label': t('country_list') });
      COUNTRIES.forEach(function (cc) {
        var b = el('button', { type: 'button', class: 'wa-country-item', 'aria-label': t('country_selected', { name: countryName(cc) }) },
          [el('span', null, countryName(cc)), el('span', { class: 'wa-country-cc' }, '+' + cc[1])]);
        b.addEventListener('click', function (ev) { ev.stopPropagation(); pick(cc); });
        b.__country = cc;
        items.appendChild(b);
      });
      search.addEventListener('input', function () {
        var q = search.value.trim().toLowerCase().replace(/^\+/, '');
        Array.prototype.forEach.call(items.children, function (b) {
          var cc = b.__country;
          b.style.display = !q || countryName(cc).toLowerCase().indexOf(q) >= 0 || cc[1].indexOf(q) === 0 ? '' : 'none';
        });
      });
      list = el('div', { class: 'wa-country-list' }, [search, items]);
      list.addEventListener('click', function (ev) { ev.stopPropagation(); });
      countryBtn.parentNode.appendChild(list);
      search.focus();
    });
    showCountry();
    C.submitPhone(S, input, next, err, function (e) {
      return e.status === 400 ? t('invalid_phone') : (e.message || t('invalid_phone'));
    }, applySnap);
    c.appendChild(el('div', { class: 'wa-login-text phone-panel' }, [
      el('h1', { class: 'wa-login-title' }, t('phone_title')),
      el('div', { class: 'wa-login-sub' }, t('phone_sub')),
      el('div', { class: 'wa-country-wrap' }, [countryBtn]),
      input, err, next,
      el('div', { class: 'wa-login-alt' }, [plainLink(t('login_with_qr'), function () { switchMode('qr'); })])
    ]));
    setTimeout(function () { input.focus(); }, 0);
  }

  function buildCodePanel(c) {
    S.codeBox = el('div', { class: 'link-code', 'aria-details': 'link-device-phone-number-code-screen-instructions' });
    S.codePhone = el('span', { class: 'code-phone' });
    var edit = plainLink(t('code_edit'), function () { switchMode('phone'); });
    edit.className = 'wa-link-div wa-link-inline';
    c.appendChild(el('div', { class: 'wa-login-text code-panel' }, [
      el('h1', { class: 'wa-login-title' }, t('code_title')),
      el('div', { class: 'wa-login-sub' }, [S.codePhone, ' ', edit]),
      S.codeBox,
      el('ol', { id: 'link-device-phone-number-code-screen-instructions', class: 'wa-login-steps' }, [
        el('li', null, t('code_step1')), el('li', null, t('code_step2')),
        el('li', null, t('code_step3')), el('li', null, t('code_step4'))
      ]),
      el('div', { class: 'wa-login-alt' }, [plainLink(t('login_with_qr'), function () { switchMode('qr'); })])
    ]));
  }

  function renderLanding(s) {
    setView('landing', buildLanding);
    var mode = C.landingPanel(S, s, { qr: buildQrPanel, phone: buildPhonePanel, code: buildCodePanel });
    if (mode === 'qr') updateQr(s);
    else if (mode === 'code') C.updateCode(S, s, function (phone) { return t('code_linking', { phone: phone }); });
    if (S.modals.cookie && !cookieBanner()) closeModal('cookie');
  }

  // ------------------------------------------------------ whole screens
  function humanDuration(d) {
    if (typeof d === 'string') return d;
    var n = Number(d) || 0;
    if (n >= 86400) return Math.round(n / 86400) + (Math.round(n / 86400) === 1 ? ' day' : ' days');
    if (n >= 3600) return Math.round(n / 3600) + (Math.round(n / 3600) === 1 ? ' hour' : ' hours');
    return Math.max(1, Math.round(n / 60)) + (Math.round(n / 60) <= 1 ? ' minute' : ' minutes');
  }

  function screenAction(action, extra) {
    var body = { cid: S.cid, action: action };
    if (extra) Object.keys(extra).forEach(function (k) { body[k] = extra[k]; });
    return api('screen/action', body);
  }

  function myPhone() {
    if (S.me && S.me.pn) return String(S.me.pn);
    if (S.login && S.login.phone) return String(S.login.phone);
    return '';
  }

  function banReason(code) {
    var known = { 101: 'ban_101', 102: 'ban_102', 103: 'ban_103', 104: 'ban_104', 106: 'ban_106' };
    return t(known[code] || 'ban_default', { phone: myPhone() });
  }

  function buildScreen(name, info) {
    var title = null, texts = [], buttons = [], extra = null, iconPath = P.alert;
    function btn(label, primary, onClick) {
      var b = el('button', { type: 'button', class: 'wa-btn ' + (primary ? 'wa-btn-primary' : 'wa-btn-secondary') }, label);
      b.addEventListener('click', function () { onClick(b); });
      return b;
    }
    switch (name) {
      case 'ANOTHER_SESSION':
        texts = [t('another_session')];
        buttons = [
          btn(t('close'), false, function () {
            screenAction('close').catch(noop).then(function () { S.stopped = true; window.open('/sim/outside?to=' + encodeURIComponent('https://www.whatsapp.com/'), '_self'); });
          }),
          btn(t('use_here'), true, function (b) {
            b.disabled = true;
            screenAction('use_here').catch(noop).then(selfReload);
          })
        ];
        break;
      case 'CONFLICT':
        texts = [t('conflict')];
        buttons = [
          btn(t('log_out'), false, function () { doLogout('conflict'); }),
          btn(t('use_here'), true, function () { bridge.takeover().catch(function (e) { toast(e.message); }); })
        ];
        break;
      case 'TEMP_BAN':
        title = t('temp_ban_title');
        texts = [banReason(info.code), t('ban_again', { duration: humanDuration(info.duration === undefined ? '1 hour' : info.duration) })];
        buttons = [
          btn(t('log_out'), false, function () { doLogout('temp_ban'); }),
          btn(t('learn_more'), true, function () {
            screenAction('learn_more').catch(noop);
            window.open('/sim/outside?to=' + encodeURIComponent(info.url || 'https://faq.whatsapp.com/'), '_blank', 'noopener');
          })
        ];
        break;
      case 'OFFLINE':
        title = t('offline_title');
        texts = [t('offline_body')];
        buttons = [btn(t('retry'), true, function () { screenAction('retry').catch(noop).then(pollNow); })];
        break;
      case 'TOS_BLOCK':
        title = t('tos_title');
        texts = [t('tos_body')];
        buttons = [btn(t('log_in'), true, function () {
          screenAction('log_in').then(function (r) { if (r && r.cid) applySnap(r); else pollNow(); }).catch(function () { pollNow(); });
        })];
        break;
      case 'DEPRECATED_VERSION':
        title = t('update_title');
        texts = [t('update_body')];
        buttons = [btn(t('refresh'), true, function (b) { b.disabled = true; screenAction('refresh').catch(noop).then(selfReload); })];
        break;
      case 'APP_LOCKED':
        iconPath = P.lock;
        title = t('locked_title');
        texts = [t('locked_body')];
        extra = el('input', { type: 'password', 'aria-label': t('password'), placeholder: t('password'), class: 'wa-lock-input', autocomplete: 'off' });
        buttons = [btn(t('unlock'), true, function () {
          screenAction('unlock', { passcode: extra.value }).then(function (r) { if (r && r.cid) applySnap(r); else pollNow(); })
            .catch(function (e) { toast(e.message); });
        })];
        break;
      default:
        texts = [name];
    }
    return el('div', { class: 'wa-screen', 'data-screen': name }, [
      el('div', { class: 'wa-screen-card' }, [
        el('div', { class: 'wa-screen-icon', html: wdsSvg('wds-ic-alert', iconPath, 56) }),
        title ? el('h1', { class: 'wa-screen-title' }, title) : null,
        el('div', { class: 'wa-screen-text' }, texts.map(function (x) { return el('div', null, x); })),
        extra,
        el('div', { class: 'wa-screen-actions' }, buttons)
      ])
    ]);
  }

  function renderScreen(name, s) {
    var info = s.screen_info || {};
    setView('screen:' + name + ':' + JSON.stringify(info), function (root) { root.appendChild(buildScreen(name, info)); });
  }

  function renderUnsupported(info, fromServer) {
    M.uninstall();
    try { delete window.require; delete window.Debug; } catch (e) { /* ignore */ }
    setView('unsupported', function (root) {
      root.appendChild(el('div', { class: 'wa-screen wa-unsupported', 'data-screen': 'UNSUPPORTED_BROWSER' }, [
        el('div', { class: 'wa-screen-card' }, [
          el('div', { class: 'wa-screen-icon', html: LOGO }),
          el('h1', { class: 'wa-screen-title' }, t('unsupported_title', { v: (info && info.min_chrome) || 100 })),
          el('div', { class: 'wa-screen-text' }, [el('div', null, t('unsupported_body'))]),
          el('div', { class: 'wa-screen-actions' }, [
            el('a', { href: '/sim/outside?to=' + encodeURIComponent('https://www.google.com/chrome/'), class: 'wa-btn wa-btn-primary', target: '_blank', rel: 'noopener' }, t('unsupported_link'))
          ])
        ])
      ]));
    });
    if (fromServer) {
      S.stopped = true;
      if (S.cid) navigator.sendBeacon('/sim/api/disconnect', JSON.stringify({ cid: S.cid }));
    }
  }

  // --------------------------------------------------------------- MAIN
  function buildApp() {
    S.chatListEl = el('div', { 'aria-label': t('chat_list'), role: 'grid', 'aria-rowcount': '0', class: 'chat-list' });
    S.searchEl = el('input', { type: 'text', 'aria-label': t('search'), placeholder: t('search'), title: t('search_title'),
      'data-tab': '3', autocomplete: 'off', class: 'wa-search-input' });
    // the list filters on input events only (typing, paste, execCommand); writing .value does nothing
    S.searchEl.addEventListener('input', function () { S.searchQuery = S.searchEl.value; filterChats(); });
    S.searchEl.addEventListener('keydown', function (e) { if (e.key === 'Enter') e.preventDefault(); });
    var menuBtn = el('button', { type: 'button', title: t('menu'), 'aria-label': t('menu'), 'data-tab': '6', class: 'icon-btn menu-btn' },
      [icon('more-refreshed', P.menu)]);
    menuBtn.addEventListener('click', function (e) { e.stopPropagation(); toggleMenu(menuBtn); });
    S.mainSlot = el('div', { class: 'main-slot' });
    S.appNode = el('div', { class: 'app-wrapper app-2026' }, [
      el('div', { class: 'app-window' }, [
        el('div', { id: 'side', class: 'side' }, [
          el('header', { class: 'side-header' }, [
            el('div', { class: 'side-brand' }, 'WhatsApp'),
            el('div', { class: 'header-icons' }, [menuBtn])
          ]),
          el('div', { class: 'search-wrap' }, [icon('search-refreshed', P.search), S.searchEl]),
          el('div', { id: 'pane-side', class: 'pane-side' }, [S.chatListEl])
        ]),
        S.mainSlot
      ])
    ]);
    showIntro();
  }

  function showIntro() {
    C.showIntro(S, [
      el('div', { class: 'intro-logo', html: LOGO }),
      el('h1', null, t('intro_title')),
      el('p', null, t('intro_text')),
      el('p', { class: 'intro-e2e' }, [icon('lock-refreshed', P.lock, { class: 'wa-lock' }), ' ', t('e2e')])
    ]);
  }

  function toggleMenu(anchor) {
    if (S.menu) { closeMenu(); return; }
    var logout = el('li', { role: 'button', tabindex: '0', class: 'menu-item', 'data-testid': 'mi-logout' },
      [el('div', { 'aria-label': t('log_out') }, t('log_out'))]);
    logout.addEventListener('click', function (e) { e.stopPropagation(); closeMenu(); doLogout('menu'); });
    var settings = el('li', { role: 'button', tabindex: '0', class: 'menu-item', 'data-testid': 'mi-settings' },
      [el('div', { 'aria-label': t('settings') }, t('settings'))]);
    settings.addEventListener('click', function (e) { e.stopPropagation(); closeMenu(); toast(t('settings_toast')); });
    S.menu = el('div', { role: 'application', class: 'menu-popup' }, [el('ul', null, [settings, logout])]);
    anchor.parentNode.appendChild(S.menu);
  }

  function closeMenu() { if (S.menu) { S.menu.remove(); S.menu = null; } }

  function doLogout(from) {
    return api('logout', { cid: S.cid, from: from }).catch(noop).then(function () { onLoggedOut('web'); return true; });
  }

  function onLoggedOut(reason) {
    if (S.stopped) return;
    S.stopped = true;
    if (reason === 'phone' || reason === 'onboarding') M.emitCmd('logout_from_bridge');
    M.emitCmd('logout');
    clearLogin(reason || 'phone');
    location.replace('/?post_logout=1');
  }

  function renderApp(s) {
    S.login = s.login || S.login;
    if (s.login) saveLogin(s.login);
    setView('app', function (root) {
      if (!S.appNode) { buildApp(); S.chatsV = -1; }
      root.appendChild(S.appNode);
    });
    if (!S.mainShown) { S.mainShown = true; M.setHasSynced(true); }
    updateOnboarding(s);
    if (S.intent && (s.state === 'CONNECTED' || s.state === 'TIMEOUT')) C.handleIntent(S, openChat, showInvalidNumber);
  }

  function updateOnboarding(s) {
    var show = !!(s.onboarding && s.onboarding.show) && !S.onboardingAcked;
    if (show && !S.modals.onboarding) {
      openModal('onboarding', { title: t('whats_new_title'), body: t('whats_new_body'), cls: 'wa-modal-whatsnew', buttons: [
        { label: t('continue'), primary: true, onClick: function (b) {
          b.disabled = true;
          S.onboardingAcked = true;
          closeModal('onboarding');
          api('onboarding/ack', { cid: S.cid }).catch(noop);
        } }
      ] });
    } else if (!show && S.modals.onboarding) {
      closeModal('onboarding');
    }
  }

  function showInvalidNumber() {
    openModal('invalid', { title: null, body: t('invalid_url'), buttons: [
      { label: t('ok'), primary: true, onClick: function () { closeModal('invalid'); } }
    ] });
  }

  // New-chat flows of a time-locked account open this modal instead of the chat (module
  // WAWebDialerPadSearchResult.react, read_file id 61082801994) [unverified: its text].
  function showRestricted() {
    openModal('restricted', { title: null, body: t('restricted_modal'), buttons: [
      { label: t('ok'), primary: true, onClick: function () { closeModal('restricted'); } }
    ] });
  }

  // ----------------------------------------------------------------- chats
  function chatWid(c) {
    if (c.wid) return c.wid;
    if (c.lid) return c.lid + '@lid';
    if (c.id && /@/.test(c.id)) return c.id;
    return (c.phone || '') + '@c.us';
  }

  function chatAckNode(ack) {
    // chat list (module WAWebChatMsgAck.react): names only, read = colour class, no aria-label
    var name = ack >= 2 ? 'wds-ic-read' : (ack === 1 ? 'wds-ic-delivered' : 'ic-schedule');
    var path = ack >= 2 ? P.read : (ack === 1 ? P.delivered : P.pending);
    return el('span', { class: 'chat-ack' + (ack >= 3 ? ' ack-blue' : ''), html: wdsSvg(name, path, 18) });
  }

  function unreadLabel(n) { return t(n === 1 ? 'unread_one' : 'unread_many', { n: n }); }

  function renderChats(chats) {
    S.chats = chats;
    S.chatListEl.textContent = '';
    S.chatListEl.setAttribute('aria-rowcount', String(chats.length));
    chats.forEach(function (c) {
      var wid = chatWid(c);
      M.upsertChat({ wid: wid, phone: c.phone, lid: c.lid, title: c.title, unread: c.unread, t: c.t });
      var last = c.last;
      // The chat list's preview is the chat's newest message model: the collection holds it
      // after every load (not as a new message), so a reloaded page still has it.
      if (last) M.addMsg(Object.assign({}, last, { serialized: last.data_id || last.serialized, fresh: false }), wid);
      var lastText = last ? (last.text || last.caption || (last.media ? last.media.name : '')) : '';
      var bottom = el('div', { class: 'chat-bottom' });
      if (last && last.from_me) bottom.appendChild(chatAckNode(last.ack || 0));
      bottom.appendChild(el('span', { class: 'chat-last', title: lastText, dir: 'auto' }, lastText));
      if (c.unread) {
        bottom.appendChild(el('span', { class: 'unread-badge', 'aria-label': unreadLabel(c.unread) }, String(c.unread)));
      }
      var active = S.openChat && S.openChat.wid === wid;
      var row = el('div', { role: 'row', tabindex: '-1', class: 'chat-item' + (active ? ' active' : '') }, [
        el('div', { role: 'gridcell', 'aria-colindex': '2', class: 'chat-cell' }, C.chatRowBody(c, bottom))
      ]);
      S.chatRows.set(row, { wid: wid, phone: c.phone });
      row.addEventListener('click', function () { openChatVia({ wid: wid, phone: c.phone }, '', true); });
      S.chatListEl.appendChild(row);
    });
    filterChats();
  }

  function filterChats() {
    if (!S.chatListEl) return;
    var q = (S.searchQuery || '').trim().toLowerCase();
    var qd = q.replace(/[^\d]/g, '');
    Array.prototype.forEach.call(S.chatListEl.children, function (row) {
      var text = row.textContent.toLowerCase();
      var hit = !q || text.indexOf(q) >= 0 || (qd && text.replace(/[^\d]/g, '').indexOf(qd) >= 0);
      row.style.display = hit ? '' : 'none';
    });
  }

  function openChatVia(target, prefill, inApp) {
    var body = { cid: S.cid, in_app: !!inApp };
    if (target.phone) body.phone = target.phone;
    else body.wid = target.wid;
    return api('chat/open', body).then(function (r) {
      if (r.ok) { openChat(r.chat, prefill); return true; }
      if (r.invalid) showInvalidNumber();  // e.g. a registered number past link_limit [unverified on this route]
      return false;
    });
  }

  function openChatModel(chat) {
    var info = M.chatInfo(chat);
    if (!info) return Promise.reject(new TypeError('not a chat model'));
    if (S.view !== 'app' || !S.appNode) return Promise.reject(new Error('the chat list is not on screen'));
    return openChatVia({ phone: info.phone, wid: info.wid }, '', true);
  }

  // ------------------------------------------------- Lexical-like editor
  // Its text is a model of its own, changed only through beforeinput/input events (typed keys, Shift+Enter,
  // execCommand('insertText'), CDP Input.insertText, paste). The DOM is drawn from the model; any other
  // change of the DOM (a textContent/innerHTML write) is reverted, so it never reaches what is sent.
  function createEditor(o) {
    var ed = el('div', { contenteditable: 'true', role: 'textbox', spellcheck: 'true', 'data-lexical-editor': 'true',
      'aria-multiline': 'true', 'aria-autocomplete': 'list', 'aria-placeholder': o.placeholder, 'aria-label': o.label,
      'data-tab': o.tab || null, class: 'lexical-editor ' + (o.cls || '') });
    var ph = el('div', { class: 'lexical-placeholder', 'aria-hidden': 'true' }, o.placeholder);
    var wrap = el('div', { class: 'lexical-rich-text-input' }, [ed, ph]);
    var model = '';
    var lastHTML = null;

    function isBlock(n) { return n.nodeType === 1 && (n.nodeName === 'P' || n.nodeName === 'DIV'); }

    // a <br> that ends its block draws no line of its own (the browser's placeholder, or Lexical's tail)
    function trailingBr(br) {
      var n = br.nextSibling;
      while (n && n.nodeType === 3 && n.data === '') n = n.nextSibling;
      return !n && (br.parentNode === ed || isBlock(br.parentNode));
    }

    function units() {
      var out = [], seenBlock = false;
      var w = document.createTreeWalker(ed, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
      var n;
      while ((n = w.nextNode())) {
        if (n.nodeType === 3) out.push({ node: n, len: n.data.length, text: true });
        else if (n.nodeName === 'BR') out.push({ node: n, len: trailingBr(n) ? 0 : 1 });
        else if (isBlock(n)) { if (seenBlock) out.push({ node: n, len: 1, block: true }); seenBlock = true; }
      }
      return out;
    }

    function domLength() { return units().reduce(function (a, u) { return a + u.len; }, 0); }

    function posToOffset(container, offset) {
      if (!ed.contains(container)) return model.length;
      var r = document.createRange();
      try { r.setStart(ed, 0); r.setEnd(container, offset); } catch (e) { return model.length; }
      var n = 0;
      units().forEach(function (u) {
        if (u.text && u.node === container) { n += Math.min(offset, u.len); return; }
        if (r.intersectsNode(u.node)) n += u.len;  // a text node, <br> or block that starts before the point
      });
      return n;
    }

    function offsetToPos(n) {
      var p = ed.firstChild;
      if (!p) return [ed, 0];
      var acc = 0;
      for (var i = 0; i < p.childNodes.length; i++) {
        var c = p.childNodes[i];
        if (c.nodeName === 'SPAN' && c.firstChild) {
          var len = c.firstChild.data.length;
          if (n <= acc + len) return [c.firstChild, n - acc];
          acc += len;
        } else if (c.nodeName === 'BR') {
          if (c.hasAttribute('data-lexical-tail') || n <= acc) return [p, i];
          acc += 1;
        }
      }
      return [p, p.childNodes.length];
    }

    function setCaret(n) {
      var pos = offsetToPos(clamp(n, 0, model.length));
      var sel = window.getSelection();
      var range = document.createRange();
      try { range.setStart(pos[0], pos[1]); } catch (e) { return; }
      range.collapse(true);
      sel.removeAllRanges();
      sel.addRange(range);
    }

    function selectionOffsets() {
      var sel = window.getSelection();
      if (!sel || !sel.rangeCount) return [model.length, model.length];
      var r = sel.getRangeAt(0);
      if (!ed.contains(r.startContainer) || !ed.contains(r.endContainer)) return [model.length, model.length];
      var a = clamp(posToOffset(r.startContainer, r.startOffset), 0, model.length);
      var b = clamp(posToOffset(r.endContainer, r.endOffset), 0, model.length);
      return a <= b ? [a, b] : [b, a];
    }

    function render(caret) {
      var p = document.createElement('p');
      p.className = 'selectable-text copyable-text x15bjb6t x1n2onr6';
      p.setAttribute('dir', 'auto');
      var lines = model.split('\n');
      lines.forEach(function (line, i) {
        if (line) {
          var sp = document.createElement('span');
          sp.className = 'selectable-text copyable-text';
          sp.setAttribute('data-lexical-text', 'true');
          sp.textContent = line;
          p.appendChild(sp);
        }
        if (i < lines.length - 1) p.appendChild(document.createElement('br'));
      });
      if (lines[lines.length - 1] === '') {
        var tail = document.createElement('br');
        tail.setAttribute('data-lexical-tail', 'true');
        p.appendChild(tail);
      }
      ed.textContent = '';
      ed.appendChild(p);
      lastHTML = ed.innerHTML;
      ph.style.display = model ? 'none' : '';
      if (caret !== undefined && caret !== null && document.activeElement === ed) setCaret(caret);
    }

    function replace(a, b, text) {
      a = clamp(a, 0, model.length);
      b = clamp(b, a, model.length);
      model = model.slice(0, a) + text + model.slice(b);
      render(a + text.length);
      if (o.onChange) o.onChange(model);
    }

    function prevBoundary(a, type) {
      if (a <= 0) return 0;
      if (/Word/.test(type)) {
        var i = a;
        while (i > 0 && /\s/.test(model.charAt(i - 1))) i--;
        while (i > 0 && !/\s/.test(model.charAt(i - 1))) i--;
        return i;
      }
      if (/Line/.test(type)) { var nl = model.lastIndexOf('\n', a - 1); return nl < 0 ? 0 : (nl + 1 === a ? nl : nl + 1); }
      var code = model.charCodeAt(a - 1);
      return code >= 0xDC00 && code <= 0xDFFF && a >= 2 ? a - 2 : a - 1;
    }

    function nextBoundary(b, type) {
      if (b >= model.length) return model.length;
      if (/Word/.test(type)) {
        var i = b;
        while (i < model.length && /\s/.test(model.charAt(i))) i++;
        while (i < model.length && !/\s/.test(model.charAt(i))) i++;
        return i;
      }
      if (/Line/.test(type)) { var nl = model.indexOf('\n', b); return nl < 0 ? model.length : (nl === b ? nl + 1 : nl); }
      var code = model.charCodeAt(b);
      return code >= 0xD800 && code <= 0xDBFF ? b + 2 : b + 1;
    }

    function targetRange(e) {
      var rs = e.getTargetRanges ? e.getTargetRanges() : [];
      if (rs && rs.length && ed.contains(rs[0].startContainer) && ed.contains(rs[0].endContainer)) {
        var a = posToOffset(rs[0].startContainer, rs[0].startOffset);
        var b = posToOffset(rs[0].endContainer, rs[0].endOffset);
        return a <= b ? [a, b] : [b, a];
      }
      return selectionOffsets();
    }

    ed.addEventListener('beforeinput', function (e) {
      flushInput();
      var type = e.inputType || '';
      if (!e.cancelable || /Composition/.test(type)) return;  // IME: taken from the input event
      e.preventDefault();
      var range = targetRange(e);
      if (/^insert(Text|ReplacementText|FromPaste|FromDrop|FromYank)$/.test(type)) {
        var text = e.data !== null && e.data !== undefined ? e.data : (e.dataTransfer ? e.dataTransfer.getData('text/plain') : '');
        replace(range[0], range[1], normalizeNl(text));
      } else if (type === 'insertLineBreak' || type === 'insertParagraph') {
        replace(range[0], range[1], '\n');
      } else if (type.indexOf('delete') === 0) {
        var a = range[0], b = range[1];
        if (a === b) {
          if (/Backward/.test(type)) a = prevBoundary(a, type);
          else b = nextBoundary(b, type);
        }
        if (a !== b) replace(a, b, '');
      }
    });

    // Changes whose beforeinput could not be cancelled or never came (execCommand, IME) arrive as input
    // events, several for one command (execCommand('insertText', 'a\nb') fires "a", null, "b" after the DOM
    // is done). They are collected and applied once, right after the command, from their data and the caret.
    var pending = null;
    function flushInput() {
      if (!pending) return;
      var p = pending;
      pending = null;
      if (p.other && !p.s) { render(model.length); return; }
      var d = domLength();
      var caret = d;
      var sel = window.getSelection();
      if (sel && sel.rangeCount && ed.contains(sel.getRangeAt(0).endContainer)) {
        var r = sel.getRangeAt(0);
        caret = posToOffset(r.endContainer, r.endOffset);
      }
      var start = clamp(caret - p.s.length, 0, model.length);
      var removed = model.length - (d - p.s.length);
      var end = clamp(start + Math.max(0, removed), start, model.length);
      replace(start, end, p.s);
    }

    ed.addEventListener('input', function (e) {
      var type = e.inputType || '';
      if (!pending) { pending = { s: '', other: false }; Promise.resolve().then(flushInput); }
      if (type === 'insertLineBreak' || type === 'insertParagraph') pending.s += '\n';
      else if (type.indexOf('insert') === 0) pending.s += e.data === null || e.data === undefined ? (type === 'insertText' ? '\n' : '') : normalizeNl(e.data);
      else if (type.indexOf('delete') !== 0) pending.other = true;
    });

    ed.addEventListener('paste', function (e) {
      flushInput();
      e.preventDefault();
      var text = e.clipboardData ? e.clipboardData.getData('text/plain') : '';
      var r = selectionOffsets();
      replace(r[0], r[1], normalizeNl(text));
    });
    ed.addEventListener('drop', function (e) { e.preventDefault(); });

    ed.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter' || e.isComposing) return;
      e.preventDefault();
      flushInput();
      if (e.shiftKey) { var r = selectionOffsets(); replace(r[0], r[1], '\n'); }
      else if (o.onEnter) o.onEnter();
    });

    new MutationObserver(function () {
      if (pending) return;  // an input event is being taken in
      if (ed.innerHTML !== lastHTML) render(model.length);
    }).observe(ed, { childList: true, characterData: true, subtree: true });

    render();
    return {
      wrap: wrap, node: ed,
      getText: function () { flushInput(); return model; },
      setText: function (text) { model = normalizeNl(text); render(model.length); if (o.onChange) o.onChange(model); },
      clear: function () { model = ''; render(0); if (o.onChange) o.onChange(model); },
      focusEnd: function () { ed.focus(); setCaret(model.length); }
    };
  }

  // ------------------------------------------------------------ open chat
  function openChat(chat, prefill) {
    closeAttach();
    closePreview();
    var wid = chatWid(chat);
    S.openChat = { phone: chat.phone, wid: wid, lid: chat.lid || null, title: chat.title };
    M.upsertChat({ wid: wid, phone: chat.phone, lid: chat.lid, title: chat.title });
    S.rows = new Map();
    S.lastDir = null;
    S.msgsEl = el('div', { class: 'messages', role: 'application' });
    S.convEl = el('div', { class: 'conversation', tabindex: '-1' }, [S.msgsEl]);
    S.composer = createEditor({ placeholder: t('type_message'), label: t('type_to', { title: chat.title }), tab: '10',
      cls: 'compose-input', onEnter: sendFromCompose, onChange: updateSendButton });
    S.sendSlot = el('div', { class: 'send-slot' });
    S.sendMode = null;
    S.attachWrap = el('div', { class: 'attach-wrap' }, [
      el('button', { type: 'button', 'aria-label': t('attach'), title: t('attach'), class: 'icon-btn attach-btn', onclick: toggleAttach },
        [icon('plus-rounded', P.plus)])
    ]);
    S.footerEl = el('footer', { class: 'main-footer' }, [
      S.attachWrap, el('div', { class: 'compose-wrap' }, [S.composer.wrap]), S.sendSlot
    ]);
    if (chat.restricted) {
      // The restricted (time-locked) or capped compose bar replaces the composer (module
      // useWAWebConversationPanelCanCompose, read_file id 54326521875) [unverified: its text].
      S.composer = null;
      S.footerEl = el('footer', { class: 'main-footer main-footer-restricted' }, [
        el('div', { class: 'restricted-bar', role: 'status' },
          t(chat.restricted === 'new_chat_cap' ? 'capped_bar' : 'restricted_bar'))
      ]);
    }
    var main = el('div', { id: 'main', class: 'main' }, [
      el('header', { class: 'main-header' }, [
        el('div', { class: 'avatar' }),
        el('div', { class: 'main-title' }, [
          el('span', { dir: 'auto', title: chat.title, class: 'main-title-text' }, chat.title),
          el('div', { class: 'main-sub' }, t('contact_info'))
        ])
      ]),
      S.convEl,
      S.footerEl
    ]);
    S.mainSlot.textContent = '';
    S.mainSlot.appendChild(main);
    (chat.messages || []).forEach(function (m) { appendRow(m); });
    if (prefill && S.composer) S.composer.setText(prefill);
    updateSendButton();
    if (S.composer) S.composer.focusEnd();
    Array.prototype.forEach.call(S.chatListEl.children, function (row) {
      var info = S.chatRows.get(row);
      row.classList.toggle('active', !!info && info.wid === wid);
    });
  }

  function updateSendButton() {
    if (!S.composer || !S.sendSlot) return;
    var hasText = S.composer.getText().trim().length > 0;
    var mode = hasText ? 'send' : 'ptt';
    if (S.sendMode === mode) return;
    S.sendMode = mode;
    S.sendSlot.textContent = '';
    if (hasText) {
      S.sendSlot.appendChild(el('button', { type: 'button', 'aria-label': t('send'), class: 'icon-btn send-btn', onclick: sendFromCompose },
        [icon('wds-ic-send-filled', P.send)]));
    } else {
      S.sendSlot.appendChild(el('button', { type: 'button', 'aria-label': t('voice'), class: 'icon-btn',
        onclick: function () { toast(t('voice_toast')); } }, [icon('wds-ic-mic-filled', P.mic)]));
    }
  }

  function sendFromCompose() {
    if (!S.openChat || !S.composer) return;
    var text = S.composer.getText().replace(/^\s+|\s+$/g, '');
    if (!text) return;
    S.composer.clear();
    var id = newMsgId();
    appendRow({ id: id, from_me: true, peer: S.openChat.phone, type: 'chat', text: text, ack: 0, t: Date.now() / 1000, fresh: true });
    C.postAcked('send', { cid: S.cid, to: S.openChat.phone, chat: S.openChat.wid, id: id, text: text },
      function (ack) { updateAck(id, ack); });
  }

  // ---------------------------------------------------------- message rows
  function setStatus(node, ack) {
    // open chat (module WAWebMessageStatus): shifted names; SENT is the single tick "wds-ic-delivered"
    var spec = ack >= 3 ? ['wds-ic-read', 'ack_read', P.read] : ack === 2 ? ['wds-ic-read', 'ack_delivered', P.read]
      : ack === 1 ? ['wds-ic-delivered', 'ack_sent', P.delivered] : ['wds-ic-status-pending', 'ack_pending', P.pending];
    node.setAttribute('aria-label', t(spec[1]));
    node.innerHTML = wdsSvg(spec[0], spec[2], 16);
    node.classList.toggle('ack-blue', ack >= 3);
  }

  function mediaBlock(m) {
    var name = m.media.name;
    if ((m.type === 'image' || m.type === 'sticker') && m.media.url) {
      return el('div', { class: m.type === 'sticker' ? 'media-sticker' : 'media-img' }, [
        el('img', { src: m.media.url, alt: name }),
        m.type === 'sticker' ? null : el('div', { class: 'media-name', title: name }, name)
      ]);
    }
    return C.docCard(m, icon(m.type === 'video' ? 'media-video' : 'document-refreshed', m.type === 'video' ? P.media : P.doc));
  }

  function appendRow(m) {
    if (!S.openChat || S.rows.has(m.id)) return;
    var dataId = m.data_id || m.serialized || ((m.from_me ? 'true' : 'false') + '_' + S.openChat.wid + '_' + m.id);
    var dir = m.from_me ? 'out' : 'in';
    var bubble = el('div', { class: 'bubble' });
    if (S.lastDir !== dir) bubble.appendChild(el('span', { 'data-icon': 'tail-' + dir, class: 'tail tail-' + dir }));
    S.lastDir = dir;
    if (m.media) bubble.appendChild(mediaBlock(m));
    var body = m.text !== null && m.text !== undefined ? m.text : m.caption;
    if (body) {
      var who = m.from_me ? t('you') : (S.openChat.title || '+' + m.peer);
      bubble.appendChild(el('div', { class: 'copyable-text',
        'data-pre-plain-text': '[' + fmtStamp(m.t, LOCALE) + '] ' + who + ': ' }, [
        el('span', { class: 'selectable-text copyable-text', dir: 'ltr' }, [el('span', null, body)])
      ]));
    }
    var meta = el('div', { class: 'msg-meta' }, [el('span', { class: 'msg-clock' }, fmtTime(m.t))]);
    var status = null;
    var ack = m.from_me ? (typeof m.ack === 'number' ? m.ack : 0) : null;
    if (m.from_me) {
      status = el('span', { class: 'msg-status' });
      setStatus(status, ack);
      meta.appendChild(status);
    }
    bubble.appendChild(meta);
    var row = el('div', { role: 'row', class: 'msg-row row-' + dir }, [
      el('div', { 'data-id': dataId, tabindex: '-1', class: 'msg focusable-list-item' }, [bubble])
    ]);
    S.msgsEl.appendChild(row);
    S.rows.set(m.id, { row: row, icon: status, ack: ack, serialized: dataId });
    M.addMsg({ id: m.id, serialized: dataId, from_me: m.from_me, ack: ack, text: m.text, caption: m.caption,
      type: m.type, sticker: m.type === 'sticker' || m.sticker, t: m.t, fresh: m.fresh }, S.openChat.wid);
    if (m.from_me && ack >= 0 && ack < 3) S.sent.set(m.id, { serialized: dataId, ack: ack });
    S.convEl.scrollTop = S.convEl.scrollHeight;
  }

  function removeRow(id) { C.removeRow(S, id, S.sent); }

  function updateAck(id, ack) {
    if (typeof ack !== 'number') return;
    var w = S.sent.get(id);
    var r = S.rows.get(id);
    var serialized = w ? w.serialized : (r ? r.serialized : null);
    if (w && (ack === -1 || ack > w.ack)) w.ack = ack;
    if (r && r.icon && (ack === -1 || ack > r.ack)) { r.ack = ack; setStatus(r.icon, ack); }
    if (serialized) M.setAck(serialized, ack);
    if (ack >= 3 || ack < 0) S.sent.delete(id);
  }

  // ------------------------------------------------------------------ media
  function toggleAttach(e) {
    e.stopPropagation();
    if (S.attachMenu) { closeAttach(); return; }
    function fileInput(accept, multiple) {
      return el('input', { type: 'file', accept: accept, multiple: !!multiple, style: 'display:none' });
    }
    var docInput = fileInput('*', true);
    var stickerInput = fileInput('image/*', false);
    var mediaInput = fileInput(MEDIA_ACCEPT, true);
    docInput.addEventListener('change', function () { onFiles(docInput, 'document'); });
    stickerInput.addEventListener('change', function () { onFiles(stickerInput, 'sticker'); });
    mediaInput.addEventListener('change', function () { onFiles(mediaInput, 'media'); });
    function item(name, path, label, input, order) {
      var li = el('li', { role: 'menuitem', tabindex: '0', 'aria-label': label, class: 'attach-item', style: 'order:' + order }, [
        el('span', { 'data-icon': name, class: 'attach-icon', html: wdsSvg(name, path) }), el('span', { class: 'attach-label' }, label), input
      ]);
      li.addEventListener('click', function (ev) { ev.stopPropagation(); if (ev.target !== input) input.click(); });
      return li;
    }
    // DOM order: Document, Sticker, Photos & videos (the sticker-maker input comes before the media input)
    S.attachMenu = el('div', { class: 'attach-menu', role: 'application' }, [el('ul', { role: 'menu' }, [
      item('document-refreshed', P.doc, t('document'), docInput, 1),
      item('wds-ic-sticker-create', P.sticker, t('sticker'), stickerInput, 3),
      item('media-refreshed', P.media, t('photos'), mediaInput, 2)
    ])]);
    S.attachWrap.appendChild(S.attachMenu);
  }

  function closeAttach() { if (S.attachMenu) { S.attachMenu.remove(); S.attachMenu = null; } }

  function onFiles(input, kind) {
    var file = C.pickedFile(S, input, kind, closeAttach, function (mb) { return t('too_large', { mb: fmtMb(mb) }); });
    if (file) openPreview(file, kind);
  }

  function openPreview(file, kind) {
    closePreview();
    var caption = createEditor({ placeholder: t('caption'), label: t('caption'), cls: 'caption-input', onEnter: sendPreview });
    var sendBtn = el('div', { role: 'button', tabindex: '0', 'aria-label': t('send'), class: 'preview-send' }, [icon('wds-ic-send-filled', P.send)]);
    var closeBtn = el('div', { role: 'button', tabindex: '0', 'aria-label': t('close'), class: 'icon-btn preview-close' }, [icon('x', P.x)]);
    var url = null, body;
    if (kind !== 'document' && file.type.indexOf('image/') === 0) {
      url = URL.createObjectURL(file);
      body = el('img', { src: url, alt: file.name, class: 'preview-img' + (kind === 'sticker' ? ' preview-sticker' : '') });
    } else {
      var video = file.type.indexOf('video/') === 0;
      body = el('div', { class: 'preview-doc' }, [
        icon(video ? 'media-video' : 'document-refreshed', video ? P.media : P.doc),
        el('div', { class: 'preview-doc-name' }, file.name),
        el('div', { class: 'preview-doc-size' }, fmtSize(file.size))
      ]);
    }
    var node = el('div', { class: 'media-preview', 'data-testid': 'media-editor' }, [
      el('div', { class: 'preview-top' }, [closeBtn, el('div', { class: 'preview-title' }, file.name)]),
      el('div', { class: 'preview-body' }, [body]),
      el('div', { class: 'preview-bottom' }, [el('div', { class: 'caption-wrap' }, [caption.wrap]), sendBtn])
    ]);
    S.preview = { file: file, kind: kind, caption: caption, node: node, url: url };
    closeBtn.addEventListener('click', closePreview);
    sendBtn.addEventListener('click', sendPreview);
    var main = document.getElementById('main');
    main.classList.add('previewing');
    main.insertBefore(node, S.footerEl);
    caption.focusEnd();
  }

  function closePreview() { C.closePreview(S); }

  function sendPreview() {
    var p = S.preview;
    if (!p || !S.openChat) return;
    var captionText = p.caption.getText().replace(/^\s+|\s+$/g, '');
    closePreview();
    var file = p.file, id = newMsgId(), to = S.openChat.phone;
    var sticker = p.kind === 'sticker';
    if (sticker) captionText = '';  // stickers carry no caption
    var type = p.kind === 'document' ? 'document' : (sticker ? 'sticker' : (file.type.indexOf('video/') === 0 ? 'video' : 'image'));
    appendRow({ id: id, from_me: true, peer: to, type: type, text: null, caption: captionText || null, sticker: sticker,
      media: { name: file.name, size: file.size, mimetype: file.type,
        url: (type === 'image' || type === 'sticker') ? URL.createObjectURL(file) : null },
      ack: 0, t: Date.now() / 1000, fresh: true });
    C.uploadMedia({ cid: S.cid, to: to, chat: S.openChat.wid, id: id, kind: p.kind === 'document' ? 'document' : 'media',
      caption: captionText, sticker: sticker ? 'true' : 'false' }, file, {
      ack: function (ack) { updateAck(id, ack); }, drop: function () { removeRow(id); },
      tooLarge: function () { return t('too_large', { mb: fmtMb(S.limits.media_max_mb) }); },
      failed: function () { return t('upload_failed'); }
    });
  }

  // ------------------------------------------------------ in-page wa.me links
  function startChatFromLink(link) {
    openModal('starting', { title: null, body: t('starting_chat'), buttons: [], cls: 'wa-modal-starting' });
    var shown = Date.now();
    function after(fn) { setTimeout(fn, Math.max(0, 350 - (Date.now() - shown))); }
    api('chat/open', { cid: S.cid, phone: link.phone, in_app: true }).then(function (r) {
      after(function () {
        closeModal('starting');
        if (r.ok && r.chat.restricted === 'reachout_timelock') showRestricted();
        else if (r.ok) openChat(r.chat, link.text);
        else showInvalidNumber();
      });
    }).catch(function (e) {
      after(function () { closeModal('starting'); toast(e.message); });
    });
  }

  C.catchWaLinks(function () { return S.view === 'app' && !!S.appNode && !!S.cid; }, startChatFromLink);

  // ----------------------------------------------------------------- events
  function handleEvent(ev) {
    if (ev.type !== 'message' || !ev.msg) return;
    // Every message that arrives joins the page's message collection as a new one (isNewMsg),
    // whichever chat is open: what WWJ (src/Client.js, Msg 'add') and WAJS
    // (src/chat/events/registerNewMessageEvent.ts) listen to.
    if (!ev.msg.from_me) {
      var wid = ev.wid || ev.msg.chat;
      M.upsertChat({ wid: wid, phone: ev.chat, lid: ev.lid, title: ev.title });
      M.addMsg(Object.assign({}, ev.msg, { serialized: ev.msg.data_id || ev.msg.serialized, fresh: true }), wid);
    }
    if (!S.openChat) return;
    var same = ev.chat === S.openChat.phone || (ev.wid && ev.wid === S.openChat.wid) || (ev.chat && ev.chat === S.openChat.wid);
    if (!same) return;
    ev.msg.fresh = true;
    appendRow(ev.msg);
    api('chat/seen', { cid: S.cid, phone: S.openChat.phone, wid: S.openChat.wid }).catch(noop);
  }

  function schedulePoll(ms) {
    if (S.stopped) return;
    clearTimeout(S.pollTimer);
    S.pollTimer = setTimeout(doPoll, ms);
  }

  function pollNow() { if (!S.polling) schedulePoll(0); }

  function doPoll() {
    if (S.stopped || !S.cid) return;
    S.polling = true;
    api('poll', { cid: S.cid, since: S.since, qr_serial: S.qrShown === null ? -1 : S.qrShown,
      chats_v: S.chatsV, watch: Array.from(S.sent.keys()) })
      .then(function (s) {
        S.polling = false;
        S.netFails = 0;
        applySnap(s);
        schedulePoll(S.pollMs);
      })
      .catch(function (e) {
        S.polling = false;
        if (e.status === 404) { selfReload(); return; }
        S.netFails += 1;
        if (S.netFails >= 2 && S.view === 'app') {
          M.setSocketState('TIMEOUT');
          M.setStream('TIMEOUT', 'OFFLINE', false);
          renderScreen('OFFLINE', {});
        }
        schedulePoll(1000);
      });
  }

  function pollLoop() { schedulePoll(S.pollMs); }

  C.watchPage(S, closeMenu, closeAttach);

  boot();
})();
