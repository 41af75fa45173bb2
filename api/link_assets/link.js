// The linking page: renders the state the server sends (server-sent events, else polling
// /state), and asks for a pairing code or a new start. Texts come from the page
// (api/link_texts.py); nothing here is shown that is not there.
"use strict";
(function () {
  const texts = JSON.parse(document.getElementById("link-texts").textContent);
  let state = JSON.parse(document.getElementById("link-state").textContent);
  const base = window.location.pathname.replace(/\/+$/, "");
  const $ = (id) => document.getElementById(id);
  const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values && k in values ? values[k] : ""));
  let wantPhone = false;    // the person chose "link with phone number instead"
  let requesting = false;   // a pairing code is being asked for
  let expired = false;
  let source = null;
  let pollTimer = null;

  function show(id, visible) { $(id).hidden = !visible; }

  function setStatus(text) {
    if ($("status").textContent !== text) $("status").textContent = text;  // announce changes only
  }

  function setError(text) {
    $("error").textContent = text || "";
    show("error", Boolean(text));
  }

  function render() {
    const view = expired ? "expired" : state.view;
    const phoneForm = wantPhone && (view === "qr" || view === "starting") && !requesting;
    show("qr", view === "qr" && !wantPhone);
    show("pairing", view === "pairing");
    show("phone-form", phoneForm);
    show("use-phone", !wantPhone && (view === "qr" || view === "starting"));
    show("use-qr", wantPhone && (view === "qr" || view === "starting"));
    show("start", view === "idle");
    show("start-again", view === "ended");
    if (view === "qr" && $("qr-image").getAttribute("src") !== state.qr_code) {
      $("qr-image").setAttribute("src", state.qr_code);  // replaced as the page's QR rotates
    }
    if (view === "pairing") $("pairing-code").textContent = state.pairing_code;
    let text;
    if (view === "expired") text = texts.expired;
    else if (requesting) text = texts.requesting;
    else if (view === "ended") text = texts["ended_" + state.reason] || fill(texts.ended, {reason: state.reason || ""});
    else if (view === "linked") text = fill(texts.linked, {phone: state.phone_number});
    else if (view === "qr" && wantPhone) text = texts.phone_label;
    else text = texts[view] || "";
    setStatus(text);
    document.body.dataset.view = view;
    if (view === "expired" || view === "linked") show("expires", false);
    else $("expires").textContent = fill(texts.expires, {time: new Date(state.expires_at).toLocaleTimeString()});
  }

  function update(next) {
    if (next.view !== state.view && next.view !== "qr") wantPhone = false;
    state = next;
    render();
  }

  function expire() {
    expired = true;
    wantPhone = false;
    if (source) source.close();
    if (pollTimer) clearInterval(pollTimer);
    render();
  }

  async function poll() {
    try {
      const r = await fetch(base + "/state", {cache: "no-store", headers: {Accept: "application/json"}});
      if (r.status === 404) return expire();
      if (r.ok) update(await r.json());
    } catch (e) { /* offline for a moment: the next poll tries again */ }
  }

  function startPolling() {
    if (!pollTimer && !expired) pollTimer = setInterval(poll, 2000);
  }

  function listen() {
    if (!("EventSource" in window)) return startPolling();
    source = new EventSource(base + "/events");
    source.addEventListener("state", (e) => update(JSON.parse(e.data)));
    source.addEventListener("gone", expire);
    source.onerror = () => {
      // The server ends each stream after a while and the browser connects again; a
      // stream that is refused (the link expired) or cannot be had falls back to polling.
      if (source.readyState === EventSource.CLOSED) { source = null; poll(); startPolling(); }
    };
  }

  async function post(path, body) {
    const r = await fetch(base + path, {
      method: "POST", headers: {"Content-Type": "application/json", Accept: "application/json"},
      body: JSON.stringify(body || {}),
    });
    const data = await r.json().catch(() => ({}));
    if (r.status === 404) { expire(); return null; }
    if (!r.ok) { setError(fill(texts.error, {message: data.message || r.status})); return null; }
    setError("");
    return data;
  }

  async function start() {
    const next = await post("/start");
    if (next) update(next);
  }

  $("use-phone").addEventListener("click", () => { wantPhone = true; setError(""); render(); $("phone").focus(); });
  $("use-qr").addEventListener("click", () => { wantPhone = false; setError(""); render(); });
  $("start").addEventListener("click", start);
  $("start-again").addEventListener("click", start);
  $("phone-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    requesting = true;
    render();
    const answer = await post("/pairing-code", {phone_number: $("phone").value});
    requesting = false;
    if (answer) update({...state, view: "pairing", pairing_code: answer.pairing_code, qr_code: ""});
    else render();
  });

  const left = new Date(state.expires_at).getTime() - Date.now();
  setTimeout(expire, Math.max(0, left));
  render();
  listen();
})();
