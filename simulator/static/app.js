/* WhatsApp Web simulator page. Vanilla JS, no external assets.
 * Talks to the server through /sim/api/* (see docs/simulator.md). */
(function () {
  'use strict';

  var C = window.__WASimCommon;  // helpers shared with the 2026 page (sim-common.js)
  var el = C.el, icon = C.icon, api = C.api, toast = C.toast, saveLogin = C.saveLogin, clearLogin = C.clearLogin;
  var newMsgId = C.newMsgId, fmtTime = C.fmtTime, fmtStamp = C.fmtStamp, fmtSize = C.fmtSize, fmtMb = C.fmtMb;

  var pollMeta = document.querySelector('meta[name="sim-poll-ms"]');
  var S = {
    cid: null, since: 0, rev: -1, view: 'startup', stopped: false, netDown: false,
    pollMs: pollMeta ? (parseInt(pollMeta.content, 10) || 200) : 200,
    limits: { media_max_mb: 16, doc_max_mb: 100 },
    intent: null, qrShown: null, codeShown: null, landingMode: null,
    chatsV: -1, chats: [], openChat: null, rows: new Map(), watch: new Set(),
    bannerKind: undefined, conflictModal: null, attachMenu: null, preview: null, menu: null
  };

  var ICONS = {
    logo: '<svg viewBox="0 0 39 39" width="39" height="39"><circle cx="19.5" cy="19.5" r="19" fill="#25D366"/><path fill="#fff" d="M19.6 8.4a11 11 0 0 0-9.5 16.6L8.6 30.6l5.8-1.5a11 11 0 1 0 5.2-20.7zm0 20a9 9 0 0 1-4.6-1.3l-.3-.2-3.4.9.9-3.3-.2-.4a9 9 0 1 1 7.6 4.3z"/></svg>',
    menu: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M12 7a2 2 0 1 0-.01-4.01A2 2 0 0 0 12 7zm0 2a2 2 0 1 0 .01 4.01A2 2 0 0 0 12 9zm0 6a2 2 0 1 0 .01 4.01A2 2 0 0 0 12 15z"/></svg>',
    search: '<svg viewBox="0 0 24 24" width="20" height="20"><path fill="currentColor" d="M15.9 14.3h-.8l-.3-.3a6.5 6.5 0 1 0-.7.7l.3.3v.8l5 5 1.5-1.5-5-5zm-6 0a4.5 4.5 0 1 1 0-9 4.5 4.5 0 0 1 0 9z"/></svg>',
    plus: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6v2z"/></svg>',
    send: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M1.1 21.8 23 12 1.1 2.2 1.1 9.8 16.7 12 1.1 14.2z"/></svg>',
    ptt: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M12 15a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5.3-3a5.3 5.3 0 0 1-10.6 0H5a7 7 0 0 0 6 6.9V22h2v-3.1a7 7 0 0 0 6-6.9h-1.7z"/></svg>',
    time: '<svg viewBox="0 0 16 15" width="16" height="15"><path fill="currentColor" d="M9.8 8.6H7.4V5.1a.6.6 0 0 0-1.2 0v4.1c0 .3.3.6.6.6h3a.6.6 0 0 0 0-1.2zM8 1.5a6 6 0 1 0 0 12 6 6 0 0 0 0-12zm0 10.8a4.8 4.8 0 1 1 0-9.6 4.8 4.8 0 0 1 0 9.6z"/></svg>',
    check: '<svg viewBox="0 0 16 15" width="16" height="15"><path fill="currentColor" d="m10.9 3.3-.5-.4a.4.4 0 0 0-.5.1L5.6 8.6 3.5 6.6a.4.4 0 0 0-.5 0l-.5.5a.4.4 0 0 0 0 .5l2.8 2.7c.2.2.4.2.6 0l5-6.4c.1-.2.1-.4 0-.6z"/></svg>',
    dblcheck: '<svg viewBox="0 0 16 15" width="16" height="15"><path fill="currentColor" d="m15 3.3-.5-.4a.4.4 0 0 0-.5.1L8.7 9.6l-.6-.6-.7.9 1.1 1.1c.2.2.4.2.6 0L15 3.9c.1-.2.1-.4 0-.6zm-3.9 0-.5-.4a.4.4 0 0 0-.5.1L4.8 9.6 2.7 7.6a.4.4 0 0 0-.5 0l-.5.5a.4.4 0 0 0 0 .5l2.8 2.7c.2.2.4.2.6 0l6-7.4c.1-.2.1-.4 0-.6z"/></svg>',
    error: '<svg viewBox="0 0 16 15" width="16" height="15"><circle cx="8" cy="7.5" r="6" fill="#ea0038"/><path fill="#fff" d="M7.3 4h1.4v4.5H7.3zm0 5.5h1.4V11H7.3z"/></svg>',
    doc: '<svg viewBox="0 0 26 30" width="26" height="30"><path fill="#79909b" d="M3 0h14l9 9v18a3 3 0 0 1-3 3H3a3 3 0 0 1-3-3V3a3 3 0 0 1 3-3z"/><path fill="#fff" opacity=".5" d="M17 0v6a3 3 0 0 0 3 3h6z"/></svg>',
    media: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M19 3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2zM8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5z"/></svg>',
    video: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z"/></svg>',
    x: '<svg viewBox="0 0 24 24" width="24" height="24"><path fill="currentColor" d="M19.1 17.2 13.9 12l5.2-5.2-1.9-1.9-5.2 5.2-5.2-5.2-1.9 1.9 5.2 5.2-5.2 5.2 1.9 1.9 5.2-5.2 5.2 5.2z"/></svg>',
    refresh: '<svg viewBox="0 0 24 24" width="44" height="44"><path fill="currentColor" d="M17.6 6.4A8 8 0 1 0 19.7 14h-2.1a6 6 0 1 1-1.4-6.2L13 11h7V4l-2.4 2.4z"/></svg>',
    alert: '<svg viewBox="0 0 48 48" width="48" height="48"><circle cx="24" cy="24" r="24" fill="#fff" opacity=".9"/><path fill="#ffd279" d="M22 12h4v16h-4zm0 20h4v4h-4z"/></svg>',
    lock: '<svg viewBox="0 0 10 12" width="10" height="12"><path fill="currentColor" d="M5 .9a3 3 0 0 0-3 3v1.3h-.6a.7.7 0 0 0-.7.7v4.8c0 .4.3.7.7.7h7.2c.4 0 .7-.3.7-.7V5.9a.7.7 0 0 0-.7-.7H8V3.9a3 3 0 0 0-3-3zm0 1.3c.9 0 1.7.8 1.7 1.7v1.3H3.3V3.9c0-.9.8-1.7 1.7-1.7z"/></svg>'
  };

  // ------------------------------------------------------------------ helpers
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function limitText(mb) { return 'The file you tried adding is larger than the ' + fmtMb(mb) + ' MB limit.'; }

  function editableText(node) {
    return (node.innerText || '').replace(/\u00a0/g, ' ').replace(/^\s+|\s+$/g, '');
  }

  function caretToEnd(node) {
    node.focus();
    var range = document.createRange();
    range.selectNodeContents(node);
    range.collapse(false);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function showModal(text, buttons) {
    var overlay = el('div', { class: 'modal-overlay', 'data-animate-modal-backdrop': 'true' });
    var actions = el('div', { class: 'modal-actions' });
    buttons.forEach(function (b) {
      var btn = el('div', { role: 'button', tabindex: '0', class: b.primary ? 'btn-primary' : 'btn-secondary' }, b.label);
      btn.addEventListener('click', function () { b.onClick(overlay); });
      btn.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); b.onClick(overlay); } });
      actions.appendChild(btn);
    });
    overlay.appendChild(el('div', { 'data-animate-modal-popup': 'true', role: 'dialog', 'aria-modal': 'true', class: 'modal' }, [
      el('div', { 'data-animate-modal-body': 'true', class: 'modal-body' }, [el('div', { class: 'modal-text' }, text), actions])
    ]));
    document.getElementById('app').appendChild(overlay);
    return overlay;
  }

  function setView(name, build) {
    if (S.view === name) return false;
    closeMenu();
    var root = document.getElementById('app');
    root.textContent = '';
    S.view = name;
    S.conflictModal = null; S.attachMenu = null; S.preview = null;
    build(root);
    return true;
  }

  // ---------------------------------------------------------------- startup
  function startupScreen(title, progressValue) {
    var progress = el('progress', { value: String(progressValue || 0), max: '100' });
    var node = el('div', { class: 'startup', 'data-testid': 'startup' }, [
      el('div', { class: 'startup-logo', html: ICONS.logo }), progress,
      el('div', { class: 'startup-title' }, title),
      el('div', { class: 'startup-sub' }, [icon('lock', ICONS.lock), ' End-to-end encrypted'])
    ]);
    return { node: node, progress: progress };
  }

  function renderSyncing(s) {
    setView('syncing', function (root) {
      var scr = startupScreen('Loading your chats', 0);
      S.syncProgress = scr.progress;
      root.appendChild(scr.node);
    });
    S.syncProgress.value = Math.round((s.sync_progress || 0) * 100);
  }

  // ---------------------------------------------------------------- landing
  function buildLanding(root) {
    S.landingMain = el('div', { class: 'landing-main' });
    root.appendChild(el('div', { class: 'landing-wrapper' }, [
      el('div', { class: 'landing-header' }, [el('span', { class: 'landing-logo', 'data-icon': 'wa-wordmark', html: ICONS.logo }),
        el('div', { class: 'landing-headerTitle' }, 'WhatsApp Web')]),
      el('div', { class: 'landing-window' }, [S.landingMain]),
      el('div', { class: 'landing-footer' }, [icon('lock', ICONS.lock), ' Your personal messages are end-to-end encrypted'])
    ]));
    S.landingMode = null;
  }

  function switchMode(mode) {
    api('mode', { cid: S.cid, mode: mode }).then(applySnap).catch(function (e) { toast(e.message); });
  }

  function linkButton(text, onClick) {
    return el('div', { class: 'landing-link' }, [
      el('div', { role: 'button', tabindex: '0', class: 'link-btn', onclick: onClick }, text)
    ]);
  }

  function buildQrPanel(c) {
    S.qrBox = el('div', { class: 'qr-box' });
    c.appendChild(el('div', { class: 'landing-row' }, [
      el('div', { class: 'landing-text' }, [
        el('h1', { class: 'landing-title' }, 'Use WhatsApp on your computer'),
        el('ol', { class: 'landing-steps' }, [
          el('li', null, 'Open WhatsApp on your phone'),
          el('li', null, 'Tap Menu or Settings and select Linked devices'),
          el('li', null, 'Tap on Link a device'),
          el('li', null, 'Point your phone to this screen to capture the QR code')
        ])
      ]),
      el('div', { class: 'landing-qr' }, [S.qrBox])
    ]));
    c.appendChild(linkButton('Link with phone number', function () { switchMode('phone'); }));
  }

  function updateQr(s) {
    C.updateQr(S, s, { label: 'Scan this QR code to link a device!', reloadText: 'Click to reload QR code',
      reloadIcon: function () { return icon('refresh-large', ICONS.refresh); }, onSnap: applySnap });
  }

  function buildPhonePanel(c) {
    var input = el('input', { type: 'text', 'aria-label': 'Type your phone number.', inputmode: 'tel',
      autocomplete: 'off', placeholder: '+1 234 567 8900', class: 'phone-input' });
    var err = el('div', { class: 'phone-error' });
    var next = el('button', { type: 'button', class: 'btn-primary btn-next' }, [el('div', null, 'Next')]);
    C.submitPhone(S, input, next, err, function (e) { return e.message || 'Invalid phone number.'; }, applySnap);
    c.appendChild(el('div', { class: 'landing-text phone-panel' }, [
      el('h1', { class: 'landing-title' }, 'Enter phone number'),
      el('p', null, 'Select a country and enter your WhatsApp phone number.'),
      input, err, next
    ]));
    c.appendChild(linkButton('Link with QR code', function () { switchMode('qr'); }));
    setTimeout(function () { input.focus(); }, 0);
  }

  function buildCodePanel(c) {
    S.codeBox = el('div', { class: 'link-code', 'aria-details': 'link-device-phone-number-code-screen-instructions' });
    S.codePhone = el('span', { class: 'code-phone' });
    c.appendChild(el('div', { class: 'landing-text code-panel' }, [
      el('h1', { class: 'landing-title' }, 'Enter code on phone'),
      el('p', null, ['Linking WhatsApp account ', S.codePhone, ' ',
        el('span', { role: 'button', tabindex: '0', class: 'link-inline', onclick: function () { switchMode('phone'); } }, '(edit)')]),
      S.codeBox,
      el('ol', { id: 'link-device-phone-number-code-screen-instructions', class: 'landing-steps' }, [
        el('li', null, 'Open WhatsApp on your phone'),
        el('li', null, 'Tap Menu or Settings and select Linked devices'),
        el('li', null, 'Tap on Link a device'),
        el('li', null, 'Tap Link with phone number instead and enter this code on your phone')
      ])
    ]));
    c.appendChild(linkButton('Link with QR code', function () { switchMode('qr'); }));
  }

  function renderLanding(s) {
    setView('landing', buildLanding);
    var mode = C.landingPanel(S, s, { qr: buildQrPanel, phone: buildPhonePanel, code: buildCodePanel });
    if (mode === 'qr') updateQr(s);
    else if (mode === 'code') C.updateCode(S, s, function (phone) { return phone; });
  }

  // -------------------------------------------------------------------- app
  function buildApp(root) {
    var login = S.login || {};
    S.chatListEl = el('div', { 'aria-label': 'Chat list', role: 'grid', 'aria-rowcount': '0', class: 'chat-list' });
    S.searchEl = el('div', { contenteditable: 'true', role: 'textbox', 'aria-label': 'Search or start a new chat',
      title: 'Search input textbox', 'data-tab': '3', class: 'search-input' });
    S.searchEl.addEventListener('input', filterChats);
    S.searchEl.addEventListener('keydown', function (e) { if (e.key === 'Enter') e.preventDefault(); });
    S.bannerSlot = el('div', { class: 'banner-slot' });
    S.bannerKind = undefined;
    var menuBtn = el('div', { role: 'button', tabindex: '0', title: 'Menu', 'aria-label': 'Menu', class: 'icon-btn menu-btn' },
      [icon('menu', ICONS.menu)]);
    menuBtn.addEventListener('click', function (e) { e.stopPropagation(); toggleMenu(menuBtn); });
    S.mainSlot = el('div', { class: 'main-slot' });
    root.appendChild(el('div', { class: 'app-wrapper' }, [
      el('div', { class: 'app-topbar' }),
      el('div', { class: 'app-window' }, [
        el('div', { id: 'side', class: 'side' }, [
          el('header', { class: 'side-header' }, [
            el('div', { class: 'avatar avatar-me', title: login.phone ? '+' + login.phone : '' }),
            el('div', { class: 'header-icons' }, [menuBtn])
          ]),
          S.bannerSlot,
          el('div', { class: 'search-wrap' }, [icon('search', ICONS.search), S.searchEl]),
          el('div', { id: 'pane-side', class: 'pane-side' }, [S.chatListEl])
        ]),
        S.mainSlot
      ])
    ]));
    showIntro();
  }

  function showIntro() {
    S.watch = new Set();
    C.showIntro(S, [
      el('div', { class: 'intro-logo', html: ICONS.logo }),
      el('h1', null, 'WhatsApp Web'),
      el('p', null, 'Send and receive messages without keeping your phone online.'),
      el('p', { class: 'intro-e2e' }, [icon('lock', ICONS.lock), ' End-to-end encrypted'])
    ]);
  }

  function toggleMenu(anchor) {
    if (S.menu) { closeMenu(); return; }
    var logout = el('li', { role: 'button', tabindex: '0', class: 'menu-item', 'data-testid': 'mi-logout' },
      [el('div', { 'aria-label': 'Log out' }, 'Log out')]);
    logout.addEventListener('click', function () { closeMenu(); doLogout('menu'); });
    var settings = el('li', { role: 'button', tabindex: '0', class: 'menu-item', 'data-testid': 'mi-settings' },
      [el('div', { 'aria-label': 'Settings' }, 'Settings')]);
    settings.addEventListener('click', function () { closeMenu(); toast('Settings are not part of the simulator.'); });
    S.menu = el('div', { role: 'application', class: 'menu-popup' }, [el('ul', null, [settings, logout])]);
    anchor.parentNode.appendChild(S.menu);
  }

  function closeMenu() { if (S.menu) { S.menu.remove(); S.menu = null; } }

  function doLogout(from) {
    api('logout', { cid: S.cid, from: from || 'menu' }).catch(function () {}).then(function () { onLoggedOut('web'); });
  }

  function onLoggedOut(reason) {
    if (S.stopped) return;
    S.stopped = true;
    clearLogin(reason || 'phone');
    location.replace('/?post_logout=1');
  }

  function updateBanner(kind) {
    if (S.bannerKind === kind) return;
    S.bannerKind = kind;
    S.bannerSlot.textContent = '';
    if (!kind) return;
    var phone = kind === 'phone';
    S.bannerSlot.appendChild(el('div', { 'data-testid': phone ? 'alert-phone' : 'alert-computer', role: 'button',
      class: 'banner ' + (phone ? 'banner-phone' : 'banner-computer') }, [
      icon(phone ? 'alert-phone' : 'alert-computer', ICONS.alert),
      el('div', { class: 'banner-text' }, [
        el('div', { class: 'banner-title' }, phone ? 'Phone not connected' : 'Computer not connected'),
        el('div', { class: 'banner-sub' }, phone ? 'Make sure your phone has an active internet connection.'
          : 'Make sure your computer has an active Internet connection.')
      ])
    ]));
  }

  function updateConflict(on) {
    if (on && !S.conflictModal) {
      S.conflictModal = showModal('WhatsApp is open in another window. Click \u201cUse here\u201d to use WhatsApp in this window.', [
        { label: 'Log out', onClick: function () { doLogout('conflict'); } },
        { label: 'Use here', primary: true, onClick: function () {
          api('takeover', { cid: S.cid }).then(applySnap).catch(function (e) { toast(e.message); });
        } }
      ]);
    } else if (!on && S.conflictModal) {
      S.conflictModal.remove();
      S.conflictModal = null;
    }
  }

  function renderApp(s) {
    if (S.view !== 'app') {
      S.login = s.login;
      saveLogin(s.login);
      setView('app', buildApp);
      S.chatsV = -1;
    } else if (s.login) {
      saveLogin(s.login);
    }
    updateBanner(S.netDown ? 'computer' : (s.offline || null));
    updateConflict(s.state === 'CONFLICT');
    if (S.intent && (s.state === 'CONNECTED' || s.state === 'TIMEOUT')) C.handleIntent(S, openChat, showInvalidNumber);
  }

  function showInvalidNumber() {
    showModal('Phone number shared via url is invalid.', [
      { label: 'OK', primary: true, onClick: function (overlay) { overlay.remove(); } }
    ]);
  }

  // ------------------------------------------------------------------ chats
  function renderChats(chats) {
    S.chats = chats;
    S.chatListEl.textContent = '';
    S.chatListEl.setAttribute('aria-rowcount', String(chats.length));
    chats.forEach(function (c) {
      var last = c.last;
      var lastText = last ? (last.text || last.caption || (last.media ? last.media.name : '')) : '';
      var bottom = el('div', { class: 'chat-bottom' });
      if (last && last.from_me) {
        var st = el('span', { class: 'msg-status' });
        setIcon(st, last.ack || 0);
        bottom.appendChild(st);
      }
      bottom.appendChild(el('span', { class: 'chat-last', title: lastText }, lastText));
      if (c.unread) {
        bottom.appendChild(el('span', { class: 'unread-badge',
          'aria-label': c.unread + (c.unread === 1 ? ' unread message' : ' unread messages') }, String(c.unread)));
      }
      var active = S.openChat && S.openChat.phone === c.phone;
      var row = el('div', { role: 'row', tabindex: '-1', class: 'chat-item' + (active ? ' active' : ''), 'data-chat': c.id }, [
        el('div', { role: 'gridcell', class: 'chat-cell' }, C.chatRowBody(c, bottom))
      ]);
      row.addEventListener('click', function () { openChatByPhone(c.phone); });
      S.chatListEl.appendChild(row);
    });
    filterChats();
  }

  function filterChats() {
    if (!S.searchEl || !S.chatListEl) return;
    var q = editableText(S.searchEl).toLowerCase();
    Array.prototype.forEach.call(S.chatListEl.children, function (row) {
      row.style.display = !q || row.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
    });
  }

  function openChatByPhone(phone) {
    api('chat/open', { cid: S.cid, phone: phone, in_app: true }).then(function (r) {
      if (r.ok) openChat(r.chat, '');
      else showInvalidNumber();
    }).catch(function (e) { toast(e.message); });
  }

  function openChat(chat, prefill) {
    closeAttach();
    S.openChat = { phone: chat.phone, id: chat.id, title: chat.title };
    S.rows = new Map();
    S.watch = new Set();
    S.msgsEl = el('div', { class: 'messages', role: 'application' });
    S.convEl = el('div', { class: 'conversation', tabindex: '-1' }, [S.msgsEl]);
    S.composeEl = el('div', { contenteditable: 'true', role: 'textbox', 'data-tab': '10', 'aria-label': 'Type a message',
      title: 'Type a message', 'aria-placeholder': 'Type a message', spellcheck: 'true', class: 'compose-input' });
    S.sendSlot = el('div', { class: 'send-slot' });
    S.sendMode = null;
    S.attachWrap = el('div', { title: 'Attach', class: 'attach-wrap' }, [
      el('button', { type: 'button', 'aria-label': 'Attach', class: 'icon-btn attach-btn', onclick: toggleAttach },
        [icon('attach-menu-plus', ICONS.plus)])
    ]);
    S.footerEl = el('footer', { class: 'main-footer' }, [
      S.attachWrap, el('div', { class: 'compose-wrap' }, [S.composeEl]), S.sendSlot
    ]);
    var main = el('div', { id: 'main', class: 'main' }, [
      el('header', { class: 'main-header' }, [
        el('div', { class: 'avatar' }),
        el('div', { class: 'main-title' }, [
          el('span', { dir: 'auto', title: chat.title, class: 'main-title-text' }, chat.title),
          el('div', { class: 'main-sub' }, 'click here for contact info')
        ])
      ]),
      S.convEl,
      S.footerEl
    ]);
    S.mainSlot.textContent = '';
    S.mainSlot.appendChild(main);
    chat.messages.forEach(appendRow);
    S.composeEl.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter' || e.isComposing) return;
      e.preventDefault();
      if (e.shiftKey) document.execCommand('insertLineBreak');
      else sendFromCompose();
      updateSendButton();
    });
    S.composeEl.addEventListener('input', updateSendButton);
    if (prefill) S.composeEl.innerText = prefill;
    updateSendButton();
    caretToEnd(S.composeEl);
    Array.prototype.forEach.call(S.chatListEl.children, function (row) {
      row.classList.toggle('active', row.getAttribute('data-chat') === chat.id);
    });
  }

  function updateSendButton() {
    var hasText = editableText(S.composeEl).length > 0;
    var mode = hasText ? 'send' : 'ptt';
    if (S.sendMode === mode) return;
    S.sendMode = mode;
    S.sendSlot.textContent = '';
    if (hasText) {
      S.sendSlot.appendChild(el('button', { type: 'button', 'aria-label': 'Send', class: 'icon-btn send-btn', onclick: sendFromCompose },
        [icon('send', ICONS.send)]));
    } else {
      S.sendSlot.appendChild(el('button', { type: 'button', 'aria-label': 'Voice message', class: 'icon-btn',
        onclick: function () { toast('Voice messages are not part of the simulator.'); } }, [icon('ptt', ICONS.ptt)]));
    }
  }

  function sendFromCompose() {
    if (!S.openChat) return;
    var text = editableText(S.composeEl);
    if (!text) return;
    S.composeEl.textContent = '';
    updateSendButton();
    var id = newMsgId();
    appendRow({ id: id, from_me: true, peer: S.openChat.phone, type: 'chat', text: text, ack: 0, t: Date.now() / 1000 });
    C.postAcked('send', { cid: S.cid, to: S.openChat.phone, id: id, text: text }, function (ack) { updateAck(id, ack); });
  }

  // ------------------------------------------------------------ message rows
  var ACK_ICONS = {
    '-1': ['msg-error', ' Failed ', ICONS.error],
    '0': ['msg-time', ' Pending ', ICONS.time],
    '1': ['msg-check', ' Sent ', ICONS.check],
    '2': ['msg-dblcheck', ' Delivered ', ICONS.dblcheck],
    '3': ['msg-dblcheck', ' Read ', ICONS.dblcheck]
  };

  function setIcon(node, ack) {
    var spec = ACK_ICONS[String(ack)] || ACK_ICONS['0'];
    node.setAttribute('data-icon', spec[0]);
    node.setAttribute('aria-label', spec[1]);
    node.innerHTML = spec[2];
    node.classList.toggle('read', ack === 3);
  }

  function mediaBlock(m) {
    var name = m.media.name;
    if (m.type === 'image' && m.media.url) {
      return el('div', { class: 'media-img' }, [
        el('img', { src: m.media.url, alt: name }),
        el('div', { class: 'media-name', title: name }, name)
      ]);
    }
    return C.docCard(m, icon(m.type === 'video' ? 'media-video' : 'document', m.type === 'video' ? ICONS.video : ICONS.doc));
  }

  function appendRow(m) {
    if (S.rows.has(m.id)) return;
    var dataId = m.data_id || ((m.from_me ? 'true' : 'false') + '_' + m.peer + '@c.us_' + m.id);
    var bubble = el('div', { class: 'bubble' });
    if (m.media) bubble.appendChild(mediaBlock(m));
    var body = m.text !== null && m.text !== undefined ? m.text : m.caption;
    if (body) {
      bubble.appendChild(el('div', { class: 'copyable-text',
        'data-pre-plain-text': '[' + fmtStamp(m.t, 'en') + '] ' + (m.from_me ? 'You' : '+' + m.peer) + ': ' }, [
        el('span', { class: 'selectable-text copyable-text', dir: 'ltr' }, [el('span', null, body)])
      ]));
    }
    var meta = el('div', { class: 'msg-meta' }, [el('span', { class: 'msg-clock' }, fmtTime(m.t))]);
    var status = null;
    if (m.from_me) {
      status = el('span', { class: 'msg-status' });
      setIcon(status, m.ack || 0);
      meta.appendChild(status);
    }
    bubble.appendChild(meta);
    var row = el('div', { role: 'row', class: 'msg-row ' + (m.from_me ? 'row-out' : 'row-in') }, [
      el('div', { 'data-id': dataId, tabindex: '-1', class: 'msg ' + (m.from_me ? 'message-out' : 'message-in') }, [bubble])
    ]);
    S.msgsEl.appendChild(row);
    S.rows.set(m.id, { row: row, icon: status, ack: m.from_me ? (m.ack || 0) : null });
    if (m.from_me && (m.ack || 0) < 3 && (m.ack || 0) >= 0) S.watch.add(m.id);
    S.convEl.scrollTop = S.convEl.scrollHeight;
  }

  function removeRow(id) { C.removeRow(S, id, S.watch); }

  function updateAck(id, ack) {
    var r = S.rows.get(id);
    if (!r || !r.icon || typeof ack !== 'number') return;
    if (ack === -1 || ack > r.ack) {
      r.ack = ack;
      setIcon(r.icon, ack);
    }
    if (r.ack >= 3 || r.ack < 0) S.watch.delete(id);
  }

  // ------------------------------------------------------------------ media
  function toggleAttach(e) {
    e.stopPropagation();
    if (S.attachMenu) { closeAttach(); return; }
    var docInput = el('input', { type: 'file', accept: '*', multiple: true, style: 'display:none' });
    var mediaInput = el('input', { type: 'file', accept: 'image/*,video/mp4,video/3gpp,video/quicktime', multiple: true, style: 'display:none' });
    docInput.addEventListener('change', function () { onFiles(docInput, 'document'); });
    mediaInput.addEventListener('change', function () { onFiles(mediaInput, 'media'); });
    function item(name, svg, label, input) {
      var li = el('li', { role: 'button', tabindex: '0', class: 'attach-item' }, [
        el('span', { 'data-icon': name, class: 'attach-icon', html: svg }), el('span', { class: 'attach-label' }, label), input
      ]);
      li.addEventListener('click', function (ev) { ev.stopPropagation(); if (ev.target !== input) input.click(); });
      return li;
    }
    S.attachMenu = el('div', { class: 'attach-menu', role: 'application' }, [el('ul', null, [
      item('document', ICONS.doc, 'Document', docInput),
      item('media-multiple', ICONS.media, 'Photos & videos', mediaInput)
    ])]);
    S.attachWrap.appendChild(S.attachMenu);
  }

  function closeAttach() { if (S.attachMenu) { S.attachMenu.remove(); S.attachMenu = null; } }

  function onFiles(input, kind) {
    var file = C.pickedFile(S, input, kind, closeAttach, limitText);
    if (file) openPreview(file, kind);
  }

  function openPreview(file, kind) {
    closePreview();
    var caption = el('div', { contenteditable: 'true', role: 'textbox', 'aria-label': 'Add a caption', title: 'Add a caption',
      class: 'caption-input' });
    var sendBtn = el('div', { role: 'button', tabindex: '0', 'aria-label': 'Send', class: 'preview-send' }, [icon('send', ICONS.send)]);
    var closeBtn = el('div', { role: 'button', tabindex: '0', 'aria-label': 'Close', class: 'icon-btn preview-close' }, [icon('x', ICONS.x)]);
    var url = null, body;
    if (kind === 'media' && file.type.indexOf('image/') === 0) {
      url = URL.createObjectURL(file);
      body = el('img', { src: url, alt: file.name, class: 'preview-img' });
    } else {
      body = el('div', { class: 'preview-doc' }, [
        icon(file.type.indexOf('video/') === 0 ? 'media-video' : 'document', file.type.indexOf('video/') === 0 ? ICONS.video : ICONS.doc),
        el('div', { class: 'preview-doc-name' }, file.name),
        el('div', { class: 'preview-doc-size' }, fmtSize(file.size))
      ]);
    }
    var node = el('div', { class: 'media-preview', 'data-testid': 'media-editor' }, [
      el('div', { class: 'preview-top' }, [closeBtn, el('div', { class: 'preview-title' }, file.name)]),
      el('div', { class: 'preview-body' }, [body]),
      el('div', { class: 'preview-bottom' }, [el('div', { class: 'caption-wrap' }, [caption]), sendBtn])
    ]);
    S.preview = { file: file, kind: kind, caption: caption, node: node, url: url };
    closeBtn.addEventListener('click', closePreview);
    sendBtn.addEventListener('click', sendPreview);
    caption.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter' || e.isComposing) return;
      e.preventDefault();
      if (e.shiftKey) document.execCommand('insertLineBreak');
      else sendPreview();
    });
    var main = document.getElementById('main');
    main.classList.add('previewing');
    main.insertBefore(node, S.footerEl);
    caretToEnd(caption);
  }

  function closePreview() { C.closePreview(S); }

  function sendPreview() {
    var p = S.preview;
    if (!p || !S.openChat) return;
    var captionText = editableText(p.caption);
    closePreview();
    var file = p.file, id = newMsgId(), to = S.openChat.phone;
    var type = p.kind === 'document' ? 'document' : (file.type.indexOf('video/') === 0 ? 'video' : 'image');
    appendRow({ id: id, from_me: true, peer: to, type: type, text: null, caption: captionText || null,
      media: { name: file.name, size: file.size, mimetype: file.type, url: type === 'image' ? URL.createObjectURL(file) : null },
      ack: 0, t: Date.now() / 1000 });
    C.uploadMedia({ cid: S.cid, to: to, id: id, kind: p.kind, caption: captionText }, file, {
      ack: function (ack) { updateAck(id, ack); }, drop: function () { removeRow(id); },
      tooLarge: function () { return 'File too large.'; }, failed: function () { return 'Upload failed.'; }
    });
  }

  // ----------------------------------------------------------------- events
  // ------------------------------------------------ in-page wa.me links
  // Clicks on <a href="https://wa.me/<digits>"> (also api.whatsapp.com/send, whatsapp://send) are caught in the
  // capture phase and run in-app behind a "Starting chat" popup, unless an ancestor has data-nohandle.
  C.catchWaLinks(function () { return S.view === 'app' && !!S.cid; }, function (link) {
    var popup = showModal(el('div', { class: 'starting-chat' }, 'Starting chat'), []);
    var shown = Date.now();
    function after(fn) { setTimeout(function () { popup.remove(); fn(); }, Math.max(0, 350 - (Date.now() - shown))); }
    api('chat/open', { cid: S.cid, phone: link.phone, in_app: true }).then(function (r) {
      after(function () { if (r.ok) openChat(r.chat, link.text); else showInvalidNumber(); });
    }).catch(function (err) { after(function () { toast(err.message); }); });
  });

  function handleEvent(ev) {
    if (ev.type === 'message') {
      if (S.openChat && S.openChat.phone === ev.chat) {
        appendRow(ev.msg);
        api('chat/seen', { cid: S.cid, phone: ev.chat }).catch(function () {});
      }
    }
  }

  function applySnap(s) {
    if (!s || s.cid !== S.cid || S.stopped) return;
    if (s.logged_out) { onLoggedOut('phone'); return; }
    if (s.limits) S.limits = s.limits;
    if (s.poll_ms) S.pollMs = s.poll_ms;
    if (s.page_heap_mb !== undefined) C.setHeap(s.page_heap_mb);
    if (s.reload && s.reload.id !== undefined && s.reload.id !== null && S.reloadId !== s.reload.id) {
      S.reloadId = s.reload.id;
      if (!C.reloadSeen(s.reload.id)) { S.stopped = true; C.markSelfReload(); location.reload(); return; }
    }
    if (s.rev >= S.rev) {
      S.rev = s.rev;
      if (s.state === 'UNPAIRED' || s.state === 'UNPAIRED_IDLE') renderLanding(s);
      else if (s.state === 'PAIRING') renderSyncing(s);
      else renderApp(s);
    }
    if (typeof s.seq === 'number' && s.seq > S.since) S.since = s.seq;
    if (S.view !== 'app') return;
    (s.events || []).forEach(handleEvent);
    Object.keys(s.acks || {}).forEach(function (id) { updateAck(id, s.acks[id]); });
    if (s.chats) { renderChats(s.chats); S.chatsV = s.chats_v; }
  }

  function pollLoop() {
    if (S.stopped) return;
    setTimeout(function () {
      if (S.stopped) return;
      api('poll', { cid: S.cid, since: S.since, qr_serial: S.qrShown === null ? -1 : S.qrShown,
        chats_v: S.chatsV, watch: Array.from(S.watch) })
        .then(function (s) {
          S.netDown = false;
          applySnap(s);
          pollLoop();
        })
        .catch(function (e) {
          if (e.status === 404) { S.stopped = true; C.markSelfReload(); location.reload(); return; }
          S.netDown = true;
          if (S.view === 'app') updateBanner('computer');
          setTimeout(pollLoop, 1000);
        });
    }, S.pollMs);
  }

  function connectFields() {  // read on each try of connect: a /send?phone=&text= load's chat, and why the page loaded
    S.intent = C.sendIntent() || S.intent;
    return { load_cause: C.loadCause(false) };
  }

  C.watchPage(S, closeMenu, closeAttach);
  C.connect(connectFields, function (snap) {
    S.cid = snap.cid;
    S.since = snap.seq;
    applySnap(snap);
    pollLoop();
  });
})();
