/* Helpers both simulator pages share: app.js (the 2021-23 page) and app2026.js (the 2025-26 page).
 * sim-loader.js loads this file first for either profile; it defines window.__WASimCommon and nothing else
 * (simulator only; not part of the real page). Vanilla JS, no external assets.
 * A helper that works on a page's state takes that object (S) and uses only the fields both pages give it
 * the same meaning: cid, intent, qrBox, qrShown, codeBox, codePhone, codeShown, landingMain, landingMode, mainSlot,
 * openChat, rows, limits, menu, attachMenu, preview. */
(function () {
  'use strict';

  var LS_WID = 'last-wid-md';
  var LS_NOISE = 'WANoiseInfo';
  var LS_TOKEN = 'WASimDeviceToken';
  var LS_OLD = 'old-logout-cred';
  var SS_SELF = 'WASimSelfReload';
  var SS_RELOADS = 'WASimReloadIds';
  var QR_SIZE = 264;

  // ------------------------------------------------------------------ DOM
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'html') node.innerHTML = v;
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : String(v));
      });
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
  }

  // <span data-icon=name> holding the markup `svg` (each page draws its own icons)
  function icon(name, svg, extra) {
    var attrs = { 'data-icon': name, html: svg };
    if (extra) Object.keys(extra).forEach(function (k) { attrs[k] = extra[k]; });
    return el('span', attrs);
  }

  function toast(text) {
    var node = el('div', { role: 'alert', 'aria-live': 'assertive', class: 'toast', 'data-testid': 'toast' }, text);
    document.getElementById('toast-container').appendChild(node);
    setTimeout(function () { node.remove(); }, 6000);
  }

  // ---------------------------------------------------------------- server
  function api(path, body) {
    return fetch('/sim/api/' + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var e = new Error(data.message || r.statusText);
          e.status = r.status; e.data = data;
          throw e;
        }
        return data;
      });
    });
  }

  // A send whose answer carries the message's ack: onAck(ack), onAck(-1) when refused (with a toast);
  // retried every second while the server is away (5xx, 404, no answer).
  function postAcked(path, body, onAck) {
    api(path, body).then(function (r) { onAck(r.ack); }).catch(function (e) {
      if (e.status && e.status < 500 && e.status !== 404) { onAck(-1); toast(e.message); }
      else setTimeout(function () { postAcked(path, body, onAck); }, 1000);
    });
  }

  // POST /sim/api/send-media (fields without null/undefined ones, then the file), retried like postAcked.
  // on: ack(ack) (-1 when refused), drop() (413: the row goes), tooLarge() and failed(): toast texts when the
  // server gives none.
  function uploadMedia(fields, file, on) {
    var fd = new FormData();
    Object.keys(fields).forEach(function (k) { if (fields[k] !== null && fields[k] !== undefined) fd.append(k, fields[k]); });
    fd.append('file', file, file.name);
    fetch('/sim/api/send-media', { method: 'POST', body: fd }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.ok) { on.ack(data.ack); return; }
        if (r.status === 413) { on.drop(); toast(data.message || on.tooLarge()); return; }
        if (r.status < 500 && r.status !== 404) { on.ack(-1); toast(data.message || on.failed()); return; }
        throw new Error('retry');
      });
    }).catch(function () { setTimeout(function () { uploadMedia(fields, file, on); }, 1000); });
  }

  // ------------------------------------------------------- login storage
  function lsGetJSON(key) {
    try { var v = localStorage.getItem(key); return v === null ? null : JSON.parse(v); }
    catch (e) { return null; }
  }

  function saveLogin(login) {
    if (!login || lsGetJSON(LS_TOKEN) === login.token) return;
    localStorage.setItem(LS_WID, JSON.stringify(login.wid));
    localStorage.setItem(LS_NOISE, JSON.stringify(login.noise_info || {}));
    localStorage.setItem(LS_TOKEN, JSON.stringify(login.token));
    localStorage.removeItem(LS_OLD);
  }

  function clearLogin(reason) {
    var wid = lsGetJSON(LS_WID);
    [LS_WID, LS_NOISE, LS_TOKEN, 'last-wid'].forEach(function (k) { localStorage.removeItem(k); });
    localStorage.setItem(LS_OLD, JSON.stringify({ wid: wid, ts: Date.now(), reason: reason }));
  }

  // POST /sim/api/connect with the stored token, the path and fields() (asked again on each try); a revoked
  // or unknown token is cleared, then onSnap(snap). Retried every second until it answers.
  function connect(fields, onSnap) {
    var token = lsGetJSON(LS_TOKEN);
    var body = { token: typeof token === 'string' ? token : null, path: location.pathname + location.search };
    var extra = fields();
    Object.keys(extra).forEach(function (k) { body[k] = extra[k]; });
    api('connect', body)
      .then(function (snap) {
        if (snap.token_status === 'revoked' || snap.token_status === 'unknown') clearLogin(snap.token_status);
        onSnap(snap);
      })
      .catch(function () { setTimeout(function () { connect(fields, onSnap); }, 1000); });
  }

  // ------------------------------------------------------------ page loads
  // Why this document loaded: self_reload (the page reloaded itself), reload, back_forward or navigation.
  // withOldApi: without a navigation timing entry, ask performance.navigation (the 2026 page does).
  function loadCause(withOldApi) {
    try {
      if (sessionStorage.getItem(SS_SELF)) { sessionStorage.removeItem(SS_SELF); return 'self_reload'; }
    } catch (e) { /* storage off */ }
    var nav = performance.getEntriesByType ? performance.getEntriesByType('navigation')[0] : null;
    var type = nav ? nav.type : '';
    if (!nav && withOldApi && performance.navigation) type = ['navigate', 'reload', 'back_forward'][performance.navigation.type];
    if (type === 'reload') return 'reload';
    if (type === 'back_forward') return 'back_forward';
    return 'navigation';
  }

  function markSelfReload() { try { sessionStorage.setItem(SS_SELF, '1'); } catch (e) { /* ignore */ } }

  // Whether the server's reload order `id` was already obeyed in this tab (if not, it is noted as obeyed).
  function reloadSeen(id) {
    var ids = [];
    try { ids = JSON.parse(sessionStorage.getItem(SS_RELOADS) || '[]'); } catch (e) { ids = []; }
    var key = String(id);
    if (ids.indexOf(key) >= 0) return true;
    ids.push(key);
    try { sessionStorage.setItem(SS_RELOADS, JSON.stringify(ids.slice(-50))); } catch (e) { /* ignore */ }
    return false;
  }

  // --------------------------------------------------------------- formats
  function newMsgId() {
    var bytes = new Uint8Array(10);
    crypto.getRandomValues(bytes);
    return '3EB0' + Array.prototype.map.call(bytes, function (b) {
      return ('0' + b.toString(16)).slice(-2);
    }).join('').toUpperCase();
  }

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function fmtTime(ts) { var d = new Date(ts * 1000); return pad(d.getHours()) + ':' + pad(d.getMinutes()); }
  // The time and date of a row's data-pre-plain-text ("[<stamp>] You: "), as the page writes
  // them in its language, in the browser's time zone: en (en-US) "8:19 PM, 6/13/2026" (field
  // code read_file ids 54826676642, 2026, and 1407734506, 2021), pt-BR "18:22, 15/08/2026"
  // ("[HH:MM, DD/MM/AAAA]", field code read_file id 71042067677, 2026-09).
  function fmtStamp(ts, locale) {
    var d = new Date(ts * 1000);
    if (locale === 'pt-BR') {
      return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ', ' + pad(d.getDate()) + '/' + pad(d.getMonth() + 1) +
        '/' + d.getFullYear();
    }
    return (d.getHours() % 12 || 12) + ':' + pad(d.getMinutes()) + ' ' + (d.getHours() < 12 ? 'AM' : 'PM') + ', ' +
      (d.getMonth() + 1) + '/' + d.getDate() + '/' + d.getFullYear();
  }
  function fmtSize(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return Math.round(n / 1024) + ' kB';
    return (n / 1024 / 1024).toFixed(1) + ' MB';
  }
  function fmtMb(v) { return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000); }

  // ------------------------------------------------------------ login page
  // Which panel the snapshot asks for ('qr', 'phone' or 'code'); on a change S.landingMain is emptied and
  // build[mode](S.landingMain) fills it.
  function landingPanel(S, s, build) {
    var mode = s.mode === 'phone_input' ? 'phone' : (s.mode === 'code' ? 'code' : 'qr');
    if (S.landingMode !== mode) {
      S.landingMain.textContent = '';
      S.qrShown = null; S.codeShown = null;
      build[mode](S.landingMain);
      S.landingMode = mode;
    }
    return mode;
  }

  function drawQr(canvas, matrix) {
    var n = matrix.length;
    var ctx = canvas.getContext('2d');
    var scale = Math.max(1, Math.floor(QR_SIZE / (n + 8)));
    var off = Math.floor((QR_SIZE - n * scale) / 2);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, QR_SIZE, QR_SIZE);
    ctx.fillStyle = '#122e31';
    for (var y = 0; y < n; y++) {
      var row = matrix[y];
      for (var x = 0; x < n; x++) {
        if (row.charCodeAt(x) === 49) ctx.fillRect(off + x * scale, off + y * scale, scale, scale);
      }
    }
  }

  // S.qrBox: the snapshot's QR code on a canvas (data-ref = its payload), or once the codes ran out the
  // reload button. o: label (the canvas's aria-label), onShown(payload) (optional), reloadIcon() (a node),
  // reloadText, onSnap (takes what /qr/reload answers).
  function updateQr(S, s, o) {
    if (s.qr) {
      if (S.qrShown === s.qr.serial) return;
      if (!s.qr.matrix) { S.qrShown = null; return; }
      var canvas = S.qrBox.querySelector('canvas');
      if (!canvas) {
        S.qrBox.textContent = '';
        canvas = el('canvas', { 'aria-label': o.label, role: 'img', width: QR_SIZE, height: QR_SIZE });
        S.qrBox.appendChild(canvas);
      }
      drawQr(canvas, s.qr.matrix);
      S.qrBox.setAttribute('data-ref', s.qr.payload);
      S.qrShown = s.qr.serial;
      if (o.onShown) o.onShown(s.qr.payload);
    } else if (s.state === 'UNPAIRED_IDLE') {
      if (S.qrBox.querySelector('button')) return;
      S.qrBox.textContent = '';
      if (s.idle_payload) S.qrBox.setAttribute('data-ref', s.idle_payload);
      var btn = el('button', { type: 'button', class: 'qr-reload' }, [
        o.reloadIcon(), el('div', { class: 'qr-reload-text' }, o.reloadText)
      ]);
      btn.addEventListener('click', function () {
        btn.disabled = true;
        api('qr/reload', { cid: S.cid }).then(o.onSnap).catch(function (e) { btn.disabled = false; toast(e.message); });
      });
      S.qrBox.appendChild(btn);
      S.qrShown = null;
    }
  }

  // The phone panel's Next button (and Enter in its input): POST pair/request; errorText(e) says a refusal.
  function submitPhone(S, input, next, err, errorText, onSnap) {
    function go() {
      err.textContent = '';
      next.disabled = true;
      api('pair/request', { cid: S.cid, phone: input.value })
        .then(onSnap)
        .catch(function (e) { err.textContent = errorText(e); })
        .then(function () { next.disabled = false; });
    }
    next.addEventListener('click', go);
    input.addEventListener('keydown', function (e) { if (e.key === 'Enter') { e.preventDefault(); go(); } });
  }

  // The snapshot's pairing code in S.codeBox, as the real page renders it: data-link-code = the characters
  // joined with commas ("A,B,C,D,E,F,G,H"), a span a character, a dash after the fourth; S.codePhone gets
  // phoneText('+<number>').
  function updateCode(S, s, phoneText) {
    if (!s.pair || S.codeShown === s.pair.code) return;
    var code = s.pair.code;
    S.codeBox.setAttribute('data-link-code', code.split('').join(','));
    S.codeBox.textContent = '';
    for (var i = 0; i < code.length; i++) {
      if (i === 4) S.codeBox.appendChild(el('span', { class: 'link-code-dash' }, '-'));
      S.codeBox.appendChild(el('span', { class: 'link-code-char' }, code.charAt(i)));
    }
    S.codePhone.textContent = phoneText('+' + s.pair.phone);
    S.codeShown = code;
  }

  // ------------------------------------------------------------------ MAIN
  // S.mainSlot without a chat: the intro panel holding `children`.
  function showIntro(S, children) {
    S.openChat = null;
    S.rows = new Map();
    S.mainSlot.textContent = '';
    S.mainSlot.appendChild(el('div', { class: 'intro', 'data-testid': 'intro' }, children));
  }

  // A chat-list row's avatar and body: the title and time above `bottom` (last message, ticks, unread badge).
  function chatRowBody(c, bottom) {
    return [
      el('div', { class: 'avatar' }),
      el('div', { class: 'chat-body' }, [
        el('div', { class: 'chat-top' }, [
          el('span', { dir: 'auto', title: c.title, class: 'chat-title' }, c.title),
          el('div', { class: 'chat-time' }, fmtTime(c.t))
        ]),
        bottom
      ])
    ];
  }

  // A document or video message's card: iconNode, the file's name, its size and extension.
  function docCard(m, iconNode) {
    var name = m.media.name;
    var ext = (name.indexOf('.') >= 0 ? name.split('.').pop() : 'file').toUpperCase();
    return el('div', { class: 'doc-card' }, [
      iconNode,
      el('div', { class: 'doc-info' }, [
        el('span', { class: 'doc-name', title: name }, name),
        el('span', { class: 'doc-size' }, fmtSize(m.media.size) + ' \u2022 ' + ext)
      ])
    ]);
  }

  // The message row `id` goes (S.rows), and `awaited` (the sends whose acks are watched) forgets it.
  function removeRow(S, id, awaited) {
    var r = S.rows.get(id);
    if (r) { r.row.remove(); S.rows.delete(id); }
    awaited.delete(id);
  }

  // The file picked in an attach-menu input, once closeAttach() has closed the menu: null without a file or
  // an open chat, or when it is over the kind's limit (S.limits; a toast says tooLarge(limitMb)).
  function pickedFile(S, input, kind, closeAttach, tooLarge) {
    var file = input.files && input.files[0];
    closeAttach();
    if (!file || !S.openChat) return null;
    var limit = kind === 'document' ? S.limits.doc_max_mb : S.limits.media_max_mb;
    if (file.size > limit * 1024 * 1024) { toast(tooLarge(limit)); return null; }
    return file;
  }

  // ------------------------------------------------------ chats from links
  // The chat a /send?phone=&text= load asks for, or null on any other path.
  function sendIntent() {
    if (location.pathname !== '/send') return null;
    var p = new URLSearchParams(location.search);
    return { phone: p.get('phone') || '', text: p.get('text') || '' };
  }

  // Opens S.intent once (the address bar goes back to /): openChat(chat, text), or onInvalid().
  function handleIntent(S, openChat, onInvalid) {
    var intent = S.intent;
    S.intent = null;
    try { history.replaceState(null, '', '/'); } catch (e) { /* ignore */ }
    api('chat/open', { cid: S.cid, phone: intent.phone, in_app: false }).then(function (r) {
      if (r.ok) openChat(r.chat, intent.text);
      else onInvalid();
    }).catch(function (e) { toast(e.message); });
  }

  // {phone, text} of a wa.me, api.whatsapp.com/send or whatsapp://send link, else null.
  function parseWaLink(href) {
    var u;
    try { u = new URL(href, location.href); } catch (e) { return null; }
    var host = u.hostname.toLowerCase();
    if ((u.protocol === 'https:' || u.protocol === 'http:') && (host === 'wa.me' || host === 'www.wa.me')) {
      var path = u.pathname.replace(/^\/+|\/+$/g, '');
      if (!path || path.indexOf('/') >= 0) return null;
      return { phone: decodeURIComponent(path), text: u.searchParams.get('text') || '' };
    }
    if ((u.protocol === 'https:' || u.protocol === 'http:') && host === 'api.whatsapp.com' && /^\/send\/?$/.test(u.pathname)) {
      return { phone: u.searchParams.get('phone') || '', text: u.searchParams.get('text') || '' };
    }
    if (u.protocol === 'whatsapp:' && /^whatsapp:\/\/send/.test(href)) {
      var q = new URLSearchParams(href.split('?')[1] || '');
      return { phone: q.get('phone') || '', text: q.get('text') || '' };
    }
    return null;
  }

  // Clicks on such links are caught in the capture phase and run in-app, start(link), while ready() says so,
  // unless an ancestor has data-nohandle; otherwise the click navigates normally.
  function catchWaLinks(ready, start) {
    document.addEventListener('click', function (e) {
      var a = e.target && e.target.closest ? e.target.closest('a[href]') : null;
      if (!a || a.closest('[data-nohandle]')) return;
      var link = parseWaLink(a.getAttribute('href'));
      if (!link || !ready()) return;
      e.preventDefault();
      e.stopPropagation();
      start(link);
    }, true);
  }

  // ------------------------------------------------------------- page-wide
  // A click outside the open menu or attach menu closes it; leaving the page tells the server (a beacon).
  function watchPage(S, closeMenu, closeAttach) {
    document.addEventListener('click', function (e) {
      if (S.menu && !S.menu.contains(e.target)) closeMenu();
      if (S.attachMenu && !S.attachMenu.contains(e.target)) closeAttach();
    });
    window.addEventListener('pagehide', function () {
      if (S.cid) navigator.sendBeacon('/sim/api/disconnect', JSON.stringify({ cid: S.cid }));
    });
  }

  // The media editor (S.preview) goes and #main shows the conversation again.
  function closePreview(S) {
    if (!S.preview) return;
    S.preview.node.remove();
    S.preview = null;
    var main = document.getElementById('main');
    if (main) main.classList.remove('previewing');
  }

  // ------------------------------------------------------------ page heap
  // page_heap_mb: that many MiB of live JS objects (arrays of doubles), a slice touched every second
  var HEAP = { chunks: [], timer: null, idx: 0 };
  var HEAP_CHUNK = 65536;  // doubles: 0.5 MiB each
  function setHeap(mb) {
    var want = Math.max(0, Math.round((Number(mb) || 0) * 2));
    if (HEAP.chunks.length > want) HEAP.chunks.length = want;
    while (HEAP.chunks.length < want) {
      var a = new Array(HEAP_CHUNK);
      for (var i = 0; i < HEAP_CHUNK; i++) a[i] = Math.random() + i;
      HEAP.chunks.push(a);
    }
    if (want && !HEAP.timer) HEAP.timer = setInterval(touchHeap, 1000);
    if (!want && HEAP.timer) { clearInterval(HEAP.timer); HEAP.timer = null; }
  }
  function touchHeap() {
    var n = HEAP.chunks.length;
    if (!n) return;
    var slice = Math.max(1, Math.ceil(n / 16));
    for (var k = 0; k < slice; k++) {
      var a = HEAP.chunks[HEAP.idx % n];
      HEAP.idx += 1;
      for (var i = 0; i < a.length; i += 16) a[i] = a[i] * 1.0000001 + 1e-9;
    }
  }

  window.__WASimCommon = {
    el: el, append: append, icon: icon, toast: toast,
    api: api, postAcked: postAcked, uploadMedia: uploadMedia,
    lsGetJSON: lsGetJSON, saveLogin: saveLogin, clearLogin: clearLogin, connect: connect,
    loadCause: loadCause, markSelfReload: markSelfReload, reloadSeen: reloadSeen,
    newMsgId: newMsgId, fmtTime: fmtTime, fmtStamp: fmtStamp, fmtSize: fmtSize, fmtMb: fmtMb,
    landingPanel: landingPanel, updateQr: updateQr, submitPhone: submitPhone, updateCode: updateCode,
    showIntro: showIntro, chatRowBody: chatRowBody, docCard: docCard, removeRow: removeRow, pickedFile: pickedFile,
    sendIntent: sendIntent, handleIntent: handleIntent, parseWaLink: parseWaLink, catchWaLinks: catchWaLinks,
    watchPage: watchPage, closePreview: closePreview, setHeap: setHeap
  };
})();
