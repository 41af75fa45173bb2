/* The page's own modules, 2026 profile: window.Debug.VERSION and window.require('WAWeb...').
 * A small look-alike of the modules that whatsapp-web.js and wa-js read (WHATSAPP_WEB.md section 2),
 * backed by the simulator page's own state (app2026.js creates them with a bridge and keeps them current).
 * Unknown names throw Error('Requiring unknown module "<name>"') like WhatsApp's loader; with the
 * `modules: false` knob every WAWeb* name throws the same way (window.Debug.VERSION stays). */
(function () {
  'use strict';

  // ------------------------------------------------------------------ events
  function Emitter() { Object.defineProperty(this, '_ev', { value: {}, enumerable: false, writable: true }); }
  Emitter.prototype.on = function (names, cb, ctx) {
    var self = this;
    if (typeof cb !== 'function') return this;
    String(names).split(/\s+/).forEach(function (n) {
      if (!n) return;
      (self._ev[n] = self._ev[n] || []).push({ cb: cb, ctx: ctx });
    });
    return this;
  };
  Emitter.prototype.once = function (name, cb, ctx) {
    var self = this;
    function wrap() { self.off(name, wrap); return cb.apply(ctx || self, arguments); }
    return this.on(name, wrap, ctx);
  };
  Emitter.prototype.off = function (names, cb) {
    var self = this;
    if (names === undefined) { this._ev = {}; return this; }
    String(names).split(/\s+/).forEach(function (n) {
      if (!self._ev[n]) return;
      self._ev[n] = cb ? self._ev[n].filter(function (l) { return l.cb !== cb; }) : [];
    });
    return this;
  };
  Emitter.prototype.trigger = function (name) {
    var args = Array.prototype.slice.call(arguments, 1);
    var self = this;
    (this._ev[name] || []).slice().forEach(function (l) {
      try { l.cb.apply(l.ctx || self, args); } catch (e) { if (window.console) console.error(e); }
    });
    return this;
  };
  Emitter.prototype.emit = Emitter.prototype.trigger;
  Emitter.prototype.addListener = Emitter.prototype.on;
  Emitter.prototype.removeListener = Emitter.prototype.off;

  function inherit(Child) {
    Child.prototype = Object.create(Emitter.prototype);
    Child.prototype.constructor = Child;
    Child.prototype.get = function (k) { return this[k]; };
    Child.prototype.set = function (k, v) {
      if (this[k] === v) return this;
      this[k] = v;
      this.trigger('change:' + k, this, v);
      this.trigger('change', this);
      return this;
    };
    return Child;
  }

  // -------------------------------------------------------------------- wids
  var WID_RE = /^([0-9]+(?:-[0-9]+)?)(?::[0-9]+)?@(c\.us|s\.whatsapp\.net|lid|g\.us)$/;
  function Wid(user, server) {
    this.server = server;
    this.user = user;
    this._serialized = user + '@' + server;
  }
  Wid.prototype.isLid = function () { return this.server === 'lid'; };
  Wid.prototype.isUser = function () { return this.server === 'c.us' || this.server === 'lid'; };
  Wid.prototype.isGroup = function () { return this.server === 'g.us'; };
  Wid.prototype.toString = function () { return this._serialized; };
  Wid.prototype.toJid = function () { return this.user + '@' + (this.server === 'c.us' ? 's.whatsapp.net' : this.server); };
  Wid.prototype.equals = function (o) { return !!o && serialOf(o) === this._serialized; };

  function serialOf(x) {
    if (x === null || x === undefined) return null;
    if (typeof x === 'string') return x;
    if (typeof x === 'object' && typeof x._serialized === 'string') return x._serialized;
    return null;
  }

  function createWid(x) {
    var s = serialOf(x);
    var m = s === null ? null : WID_RE.exec(s);
    if (!m) throw new Error('createWid: invalid wid ' + String(s === null ? x : s));
    return new Wid(m[1], m[2] === 's.whatsapp.net' ? 'c.us' : m[2]);
  }

  function plainWid(w) { return { server: w.server, user: w.user, _serialized: w._serialized }; }

  // ------------------------------------------------------------ collections
  function Collection(name) {
    Emitter.call(this);
    Object.defineProperty(this, '_byId', { value: new Map(), enumerable: false });
    this.modelName = name;
    this.models = [];
  }
  Collection.prototype = Object.create(Emitter.prototype);
  Collection.prototype.constructor = Collection;
  Object.defineProperty(Collection.prototype, 'length', { get: function () { return this.models.length; } });
  Collection.prototype.get = function (id) { var s = serialOf(id); return s === null ? undefined : this._byId.get(s); };
  Collection.prototype.getModelsArray = function () { return this.models.slice(); };
  Collection.prototype.toArray = Collection.prototype.getModelsArray;
  Collection.prototype.filter = function (fn) { return this.models.filter(fn); };
  Collection.prototype.find = function (fn) { return this.models.find(fn); };
  Collection.prototype.forEach = function (fn) { this.models.forEach(fn); };
  Collection.prototype.add = function (model) {
    var key = model.id._serialized;
    if (this._byId.has(key)) return this._byId.get(key);
    this._byId.set(key, model);
    this.models.push(model);
    this.trigger('add', model, this);
    return model;
  };

  var MsgModel = inherit(function MsgModel(attrs) {
    Emitter.call(this);
    var self = this;
    Object.keys(attrs).forEach(function (k) { self[k] = attrs[k]; });
  });
  MsgModel.prototype.serialize = function () {
    return { id: { fromMe: this.id.fromMe, remote: plainWid(this.id.remote), id: this.id.id, _serialized: this.id._serialized },
      ack: this.ack, body: this.body, caption: this.caption, type: this.type, t: this.t, isSticker: this.isSticker };
  };

  var ChatModel = inherit(function ChatModel(wid, phone, lid, title) {
    Emitter.call(this);
    this.id = wid;
    this.name = undefined;
    this.formattedTitle = title || ('+' + (phone || wid.user));
    this.isGroup = false;
    this.unreadCount = 0;
    this.t = 0;
    this.msgs = new Collection('Msg');
    Object.defineProperty(this, '__sim', { value: { phone: phone || null, lid: lid || null }, enumerable: false, writable: true });
  });
  ChatModel.prototype.serialize = function () {
    return { id: plainWid(this.id), formattedTitle: this.formattedTitle, isGroup: false, unreadCount: this.unreadCount, t: this.t };
  };

  // --------------------------------------------------------------- factory
  function create(bridge, opts) {
    opts = opts || {};
    var enabled = opts.modules !== false;
    var openArgs = opts.open_chat_args === 'positional' ? 'positional' : 'object';
    var pn2lid = new Map(), lid2pn = new Map();
    var me = { pn: null, lid: null };
    var restriction = null;  // the account's restriction on new chats (poll 'restriction')

    var Socket = new (inherit(function SocketModel() { Emitter.call(this); this.state = 'OPENING'; this.hasSynced = false; }))();
    Socket.takeover = function () { return bridge.takeover(); };
    Socket.logout = function () { return bridge.logout('model'); };
    Socket.reconnect = function () { return bridge.reconnect(); };
    Socket.poke = Socket.reconnect;

    var Stream = new (inherit(function StreamModel() {
      Emitter.call(this); this.displayInfo = 'OPENING'; this.mode = 'SYNCING'; this.needsUpdate = false; this.available = false;
    }))();
    // Presence while marking read (WWJ sendSeen wraps its call in these).
    Stream.markAvailable = function () { Stream.set('available', true); };
    Stream.markUnavailable = function () { Stream.set('available', false); };
    var Conn = new (inherit(function ConnModel() { Emitter.call(this); this.ref = null; this.platform = 'web'; this.pushname = null; }))();

    var Cmd = new Emitter();
    Cmd.refreshQR = function () { return bridge.refreshQR(); };
    Cmd.openChatBottom = function (a) {
      var chat;
      if (openArgs === 'object') {
        if (!a || typeof a !== 'object' || a instanceof ChatModel) {
          throw new TypeError("Cannot read properties of undefined (reading 'id')");
        }
        if (!(a.chat instanceof ChatModel)) throw new TypeError("e.chat.getCollection is not a function");
        chat = a.chat;
      } else {
        if (!(a instanceof ChatModel)) {
          throw new TypeError(a && typeof a === 'object' && 'chat' in a
            ? "Cannot read properties of undefined (reading 'toString')" : 'e.getCollection is not a function');
        }
        chat = a;
      }
      return bridge.openChat(chat);
    };

    var Msg = new Collection('Msg');
    var Chat = new Collection('Chat');

    function knowContact(phone, lid) {
      if (!phone || !lid) return;
      pn2lid.set(String(phone), String(lid));
      lid2pn.set(String(lid), String(phone));
    }

    function upsertChat(c) {
      var wid = createWid(c.wid || ((c.phone || '') + '@c.us'));
      if (c.phone && c.lid) knowContact(c.phone, c.lid);
      var chat = Chat.get(wid);
      if (!chat) {
        chat = new ChatModel(wid, c.phone, c.lid, c.title);
        Chat.add(chat);
      } else {
        if (c.phone) chat.__sim.phone = c.phone;
        if (c.lid) chat.__sim.lid = c.lid;
        if (c.title) chat.formattedTitle = c.title;
      }
      if (typeof c.unread === 'number') chat.set('unreadCount', c.unread);
      if (typeof c.t === 'number') chat.set('t', c.t);
      return chat;
    }

    function addMsg(m, chatWid) {
      var existing = Msg.get(m.serialized);
      if (existing) { if (m.from_me) setAck(m.serialized, m.ack); return existing; }
      var remote = createWid(chatWid);
      var mine = me.lid && remote.isLid() ? new Wid(me.lid, 'lid') : (me.pn ? new Wid(me.pn, 'c.us') : null);
      var model = new MsgModel({
        id: { fromMe: !!m.from_me, remote: remote, id: m.id, _serialized: m.serialized },
        ack: typeof m.ack === 'number' ? m.ack : (m.from_me ? 0 : null),
        body: m.text !== null && m.text !== undefined ? m.text : (m.caption || ''),
        caption: m.caption || undefined,
        type: m.sticker ? 'sticker' : (m.type || 'chat'),
        isSticker: !!m.sticker,
        t: Math.floor(m.t || Date.now() / 1000),
        from: m.from_me ? mine : remote,
        to: m.from_me ? remote : mine,
        isNewMsg: !!m.fresh
      });
      // Media and replies as WhatsApp's message model names them: mimetype, filename, size
      // (WWJ src/structures/Message.js downloadMedia), quotedStanzaID / quotedParticipant /
      // quotedMsg (WAJS src/chat/events/registerNewMessageEvent.ts; WWJ Message.hasQuotedMsg).
      if (m.media) {
        model.mimetype = m.media.mimetype;
        model.filename = m.media.name;
        model.size = m.media.size;
      }
      if (m.quoted) {
        model.quotedStanzaID = m.quoted.id;
        model.quotedParticipant = m.quoted.from_me ? mine : remote;
        model.quotedMsg = { type: m.quoted.type || 'chat', body: m.quoted.body || '' };
      } else if (m.quoted_id) {
        model.quotedStanzaID = m.quoted_id;
      }
      var chat = Chat.get(remote);
      if (chat) chat.msgs.add(model);
      Msg.add(model);
      return model;
    }

    function setAck(serialized, ack) {
      var model = Msg.get(serialized);
      if (!model || typeof ack !== 'number' || model.ack === ack) return;
      if (ack !== -1 && typeof model.ack === 'number' && ack < model.ack) return;
      model.ack = ack;
      model.trigger('change:ack', model, ack);
      model.trigger('change', model);
      Msg.trigger('change:ack', model, ack);
    }

    function findOrCreateLatestChat(w) {
      return Promise.resolve().then(function () {
        var wid = createWid(w);
        if (wid.isLid()) {
          var known = Chat.get(wid);
          if (known) return { chat: known.serialize(), created: false };
          var chat = new ChatModel(wid, lid2pn.get(wid.user) || null, wid.user);
          Chat.add(chat);
          return { chat: chat.serialize(), created: true };
        }
        var lid = pn2lid.get(wid.user);
        var hit = Chat.get(lid ? lid + '@lid' : wid._serialized);
        if (hit) return { chat: hit.serialize(), created: false };
        return bridge.exists(wid.user).then(function (r) {
          if (!r || !r.wid) throw new Error('findOrCreateLatestChat: ' + wid._serialized + ' is not on WhatsApp');
          var pn = createWid(r.wid).user;
          if (r.lid) knowContact(pn, r.lid);
          var id = r.lid ? new Wid(String(r.lid), 'lid') : new Wid(pn, 'c.us');
          var again = Chat.get(id);
          if (again) return { chat: again.serialize(), created: false };
          var fresh = new ChatModel(id, pn, r.lid || null);
          Chat.add(fresh);
          return { chat: fresh.serialize(), created: true };
        });
      });
    }

    function queryWidExists(w) {
      return Promise.resolve().then(function () {
        var wid = createWid(w);
        if (wid.isLid()) {
          var pn = lid2pn.get(wid.user);
          return pn ? { wid: new Wid(pn, 'c.us') } : null;
        }
        return bridge.exists(wid.user).then(function (r) {
          if (!r || !r.wid) return null;
          var found = createWid(r.wid);
          if (r.lid) knowContact(found.user, r.lid);
          return { wid: found };
        });
      });
    }

    // WAWebUpdateUnreadChatAction (WWJ sendSeen, 2026-03; WAJS chat.markIsRead): the 2026 page's
    // sendSeen takes one object {chat, threadId}; a bare chat model fails there as it does on the
    // real page since the signature changed. markSeen(chat) is the older name (field code).
    function seenChat(chat) {
      return Promise.resolve(bridge.seen(chat)).then(function () { chat.set('unreadCount', 0); return true; });
    }
    function sendSeen(arg) {
      return Promise.resolve().then(function () {
        if (!arg || typeof arg !== 'object' || arg instanceof ChatModel) throw new TypeError("Cannot read properties of undefined (reading 'id')");
        if (!(arg.chat instanceof ChatModel)) throw new TypeError("e.chat.getCollection is not a function");
        return seenChat(arg.chat);
      });
    }
    function markSeen(chat) {
      return Promise.resolve().then(function () {
        if (!(chat instanceof ChatModel)) throw new TypeError('e.getCollection is not a function');
        return seenChat(chat);
      });
    }

    function getCurrentLid(w) {
      var s = serialOf(w);
      var m = s && WID_RE.exec(s);
      if (!m) return null;
      if (m[2] === 'lid') return new Wid(m[1], 'lid');
      var lid = pn2lid.get(m[1]);
      return lid ? new Wid(lid, 'lid') : null;
    }

    function getPhoneNumber(w) {
      var s = serialOf(w);
      var m = s && WID_RE.exec(s);
      if (!m) return null;
      if (m[2] !== 'lid') return new Wid(m[1], 'c.us');
      var pn = lid2pn.get(m[1]);
      return pn ? new Wid(pn, 'c.us') : null;
    }

    // A chat "can send while restricted" when it is not new: it has a message either way
    // [unverified: the exact rule of the real canSendMsgWhileTimelocked / canSendMsgWhileCapped].
    function chatOf(arg) { return arg && arg.chat instanceof ChatModel ? arg.chat : (arg instanceof ChatModel ? arg : null); }
    function notNew(arg) { var chat = chatOf(arg); return !!chat && (chat.t > 0 || chat.msgs.length > 0); }

    var StreamInfo = { OFFLINE: 'OFFLINE', OPENING: 'OPENING', PAIRING: 'PAIRING', SYNCING: 'SYNCING', RESUMING: 'RESUMING',
      CONNECTING: 'CONNECTING', NORMAL: 'NORMAL', TIMEOUT: 'TIMEOUT', CONFLICT: 'CONFLICT' };
    var StreamMode = { QR: 'QR', MAIN: 'MAIN', SYNCING: 'SYNCING', OFFLINE: 'OFFLINE', CONFLICT: 'CONFLICT',
      PROXYBLOCK: 'PROXYBLOCK', TOS_BLOCK: 'TOS_BLOCK', SMB_TOS_BLOCK: 'SMB_TOS_BLOCK', DEPRECATED_VERSION: 'DEPRECATED_VERSION' };
    var SocketState = ['UNLAUNCHED', 'OPENING', 'PAIRING', 'UNPAIRED', 'UNPAIRED_IDLE', 'CONNECTED', 'TIMEOUT', 'CONFLICT',
      'PROXYBLOCK', 'TOS_BLOCK', 'SMB_TOS_BLOCK', 'DEPRECATED_VERSION'].reduce(function (o, k) { o[k] = k; return o; }, {});

    var MODULES = {
      WAWebSocketModel: { Socket: Socket, SOCKET_STATE: SocketState },
      WAWebStreamModel: { Stream: Stream, StreamInfo: StreamInfo, StreamMode: StreamMode },
      WAWebConnModel: { Conn: Conn },
      WAWebCmd: { Cmd: Cmd },
      WAWebCollections: { Msg: Msg, Chat: Chat },
      WAWebWidFactory: { createWid: createWid, createWidFromWidLike: createWid, isWidlike: function (x) { return serialOf(x) !== null && WID_RE.test(serialOf(x)); } },
      WAWebFindChatAction: { findOrCreateLatestChat: findOrCreateLatestChat },
      WAWebQueryExistsJob: { queryWidExists: queryWidExists },
      WAWebUpdateUnreadChatAction: { sendSeen: sendSeen, markSeen: markSeen },
      WAWebReachoutTimelockUtils: {
        isUserReachoutTimelocked: function () { return restriction === 'reachout_timelock'; },
        canSendMsgWhileTimelocked: notNew
      },
      WAWebIndividualNewChatMessageCappingLimitUtils: {
        isUserCapped: function () { return restriction === 'new_chat_cap'; },
        canSendMsgWhileCapped: notNew
      },
      WAWebApiContact: { getCurrentLid: getCurrentLid, getPhoneNumber: getPhoneNumber },
      WAWebUserPrefsMeUser: {
        getMaybeMePnUser: function () { return me.pn ? new Wid(me.pn, 'c.us') : null; },
        getMaybeMeLidUser: function () { return me.lid ? new Wid(me.lid, 'lid') : null; },
        getMaybeMeUser: function () { return me.pn ? new Wid(me.pn, 'c.us') : null; }
      }
    };

    function requireModule(name) {
      var known = typeof name === 'string' && Object.prototype.hasOwnProperty.call(MODULES, name);
      if (!known || (!enabled && /^WAWeb/.test(name))) {
        throw new Error('Requiring unknown module "' + String(name) + '"');
      }
      return MODULES[name];
    }

    return {
      install: function (version) {
        window.Debug = window.Debug || {};
        window.Debug.VERSION = String(version);
        window.require = requireModule;
      },
      uninstall: function () {
        try { delete window.require; } catch (e) { window.require = undefined; }
        try { delete window.Debug; } catch (e) { window.Debug = undefined; }
      },
      setVersion: function (v) { if (window.Debug && v) window.Debug.VERSION = String(v); },
      setEnabled: function (b) { enabled = b !== false; },
      setOpenChatArgs: function (m) { openArgs = m === 'positional' ? 'positional' : 'object'; },
      setSocketState: function (s) { if (s) Socket.set('state', s); },
      setHasSynced: function (b) { Socket.set('hasSynced', !!b); Stream.set('hasSynced', !!b); },
      setStream: function (info, mode, needsUpdate) {
        if (info) Stream.set('displayInfo', info);
        if (mode) Stream.set('mode', mode);
        Stream.set('needsUpdate', !!needsUpdate);
        Stream.set('available', info === 'NORMAL');
      },
      setRef: function (ref) { if (ref) Conn.set('ref', ref); },
      setMe: function (m) {
        if (!m) return;
        me.pn = m.pn ? String(m.pn) : me.pn;
        me.lid = m.lid ? String(m.lid) : me.lid;
        if (me.pn && me.lid) knowContact(me.pn, me.lid);
      },
      setRestriction: function (kind) { restriction = kind || null; },
      knowContact: knowContact,
      upsertChat: upsertChat,
      getChat: function (wid) { return Chat.get(wid); },
      addMsg: addMsg,
      setAck: setAck,
      emitCmd: function () { Cmd.trigger.apply(Cmd, arguments); },
      chatInfo: function (chat) { return chat && chat.__sim ? { wid: chat.id._serialized, phone: chat.__sim.phone, lid: chat.__sim.lid } : null; }
    };
  }

  window.__WASimModules = { create: create };
})();
