// The marketer's view of the CDP: a debug panel over the demo shop showing the live profile, the
// segments with explain(), the event stream and what leaves for the collector. Dependency-free;
// opened by ?keystone_debug=1 or Alt+K (see shop.js). Styles in /debug.css.
const TABS = ["Profile", "Segments", "Events", "Outbound"];
let panel = null;
let timer = 0;
let unsubscribe = null;
let tab = sessionStorage.getItem("keystone_debug_tab") || "Segments";
let definitions = null;
const open = new Set(); // expanded segment ids

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
const json = (v) => esc(JSON.stringify(v, null, 2));
// Numbers shown to 2 decimals at most (a decaying score is 5.9999654…).
const round = (_, x) => (typeof x == "number" && !Number.isInteger(x) ? Math.round(x * 100) / 100 : x);
const short = (v) => {
  const s = JSON.stringify(v, round);
  return esc(s && s.length > 140 ? s.slice(0, 137) + "…" : s);
};
const time = (t) => new Date(t).toLocaleTimeString([], { hour12: false });
const mark = (b) => `<span class="ksd-mark ${b ? "yes" : "no"}">${b ? "✓" : "✗"}</span>`;

export function openPanel(ks, log) {
  if (panel) return;
  if (!document.querySelector('link[href="/debug.css"]')) document.head.insertAdjacentHTML("beforeend", '<link rel="stylesheet" href="/debug.css">');
  panel = document.createElement("aside");
  panel.id = "ks-debug";
  panel.setAttribute("aria-label", "Keystone debug panel");
  document.body.appendChild(panel);
  panel.addEventListener("click", (e) => {
    const t = e.target.closest("[data-tab],[data-seg],[data-action]");
    if (!t) return;
    if (t.dataset.tab) {
      tab = t.dataset.tab;
      sessionStorage.setItem("keystone_debug_tab", tab);
    } else if (t.dataset.seg) {
      open.has(t.dataset.seg) ? open.delete(t.dataset.seg) : open.add(t.dataset.seg);
    } else if (t.dataset.action === "close") return closePanel();
    else if (t.dataset.action === "flush" && ks && ks.flush) ks.flush().catch(() => {});
    else if (t.dataset.action === "refresh" && ks) ks.refresh();
    draw(ks, log);
  });
  fetch("/segments.json")
    .then((r) => r.json())
    .then((d) => ((definitions = d), draw(ks, log)))
    .catch(() => {});
  if (ks) {
    for (const n of ["segment:enter", "segment:exit", "identify", "reset"]) ks.on(n, () => setTimeout(() => draw(ks, log), 0));
  }
  // Redraws caused by what Keystone reports are coalesced on a timer: drawing calls explain(),
  // whose own error reports must not feed back into an immediate redraw.
  let pending = 0;
  const later = () => pending || (pending = setTimeout(() => ((pending = 0), draw(ks, log)), 100));
  unsubscribe = log && log.onChange(later);
  timer = setInterval(() => draw(ks, log), 1000);
  draw(ks, log);
}

export function closePanel() {
  sessionStorage.removeItem("keystone_debug");
  clearInterval(timer);
  if (unsubscribe) unsubscribe();
  if (panel) panel.remove();
  panel = null;
}

function draw(ks, log) {
  if (!panel) return;
  const scroll = panel.querySelector(".ksd-body")?.scrollTop || 0;
  const p = ks ? ks.profile() : null;
  const head = `<header class="ksd-head">
    <div class="ksd-title"><span class="ksd-logo">◆</span> Keystone <span class="ksd-sub">on-device CDP</span></div>
    <button class="ksd-x" data-action="close" title="Close (Alt+K)">×</button>
  </header>
  <div class="ksd-id">${p ? `<span class="ksd-dot ${p.identified ? "known" : ""}"></span><b>${p.identified ? "identified" : "anonymous"}</b> · <code title="anonymousId">${esc(p.anonymousId)}</code>${p.userId ? ` · user <code title="userId (SHA-256 of the email)">${esc(p.userId.slice(0, 12))}…</code>` : ""}` : "Keystone is not running"}</div>
  <nav class="ksd-tabs">${TABS.map((t) => `<button data-tab="${t}" class="${t === tab ? "on" : ""}">${t}${t === "Segments" && p ? ` <span class="ksd-n">${p.segments.length}</span>` : ""}</button>`).join("")}</nav>`;
  let body = "";
  if (!ks) body = `<p class="ksd-empty">Keystone did not start on this page (see the console).</p>`;
  else if (tab === "Profile") body = profileView(p);
  else if (tab === "Segments") body = segmentsView(ks, p);
  else if (tab === "Events") body = eventsView(log);
  else body = outboundView(ks, log);
  const html = head + `<div class="ksd-body">${body}</div>`;
  if (html === panel.__html) return; // unchanged: keep open <details> and the scroll position
  panel.__html = html;
  // The control that had the focus (a tab, a segment) keeps it through the redraw: a keyboard
  // or screen reader user stays where they were.
  const f = panel.contains(document.activeElement) && document.activeElement;
  const key = f && ["tab", "seg", "action"].map((k) => f.dataset[k] && `[data-${k}="${CSS.escape(f.dataset[k])}"]`).find(Boolean);
  panel.innerHTML = html;
  panel.querySelector(".ksd-body").scrollTop = scroll;
  if (key) panel.querySelector(key)?.focus();
}

function table(obj) {
  const rows = Object.entries(obj || {});
  if (!rows.length) return `<p class="ksd-empty">none</p>`;
  return `<table class="ksd-kv">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${typeof v === "object" && v !== null ? `<code>${short(v)}</code>` : esc(round(k, v))}</td></tr>`).join("")}</table>`;
}

function profileView(p) {
  const events = Object.entries(p.events || {});
  return `<h4>Traits</h4>${table(p.traits)}
  <h4>Scores</h4>${table(p.scores)}
  <h4>Behaviour</h4>${
    events.length
      ? `<table class="ksd-kv">${events.map(([n, e]) => `<tr><th>${esc(n)}</th><td>${e.count}× ${e.lastAt ? `<span class="ksd-dim">last ${time(e.lastAt)}</span>` : ""}</td></tr>`).join("")}</table>`
      : `<p class="ksd-empty">no events yet</p>`
  }
  <h4>Session</h4>${table(p.session)}
  <h4>Context</h4>${table({ path: p.context.path, referrer: p.context.referrer, utm: p.context.utm, device: p.context.device, language: p.context.language, timezone: p.context.timezone })}
  <h4>Consent</h4>${table(p.consent)}
  <details><summary>Raw profile document</summary><pre>${json(p)}</pre></details>`;
}

function segmentsView(ks, p) {
  const defs = (definitions && definitions.segments) || p.segments.map((id) => ({ id }));
  return `<p class="ksd-hint">Evaluated on this device, live. Click a segment to see why.</p>
  <ul class="ksd-segs">${defs
    .map((d) => {
      const inSeg = ks.inSegment(d.id);
      const exp = open.has(d.id) ? explainView(ks, d.id) : "";
      return `<li class="${inSeg ? "in" : ""}"><button data-seg="${esc(d.id)}">${mark(inSeg)}<span class="ksd-segid">${esc(d.id)}</span><span class="ksd-dim">${esc(d.name || "")}</span></button>${exp}</li>`;
    })
    .join("")}</ul>
  ${experiencesView(ks)}
  <button class="ksd-btn" data-action="refresh">Re-evaluate time windows (refresh)</button>`;
}

// Experiences: what decide() answers now (from explain(), which records nothing), and the caps.
function experiencesView(ks) {
  const xs = (definitions && definitions.experiences) || [];
  if (!xs.length || typeof ks.explain !== "function") return "";
  return `<h4>Experiences</h4><ul class="ksd-segs">${xs
    .map((x) => {
      const e = ks.explain(x.id);
      if (!e || e.kind !== "experience") return "";
      const rows = e.variants
        .map((v) => `<div class="ksd-node">${mark(v.eligible)}<b>${esc(v.id)}</b> <span class="ksd-dim">${v.segment ? "segment " + esc(v.segment) + (v.inSegment ? " ✓" : " ✗") : "no segment"} · priority ${esc(v.priority)}${v.cap ? ` · cap ${esc(v.seen)}/${esc(v.cap.count)} in ${esc(v.cap.within || "retention")}${v.capped ? " — reached" : ""}` : ""}${v.chosen ? " · <b>shown</b>" : ""}</span></div>`)
        .join("");
      return `<li class="in"><div class="ksd-node"><span class="ksd-segid">${esc(x.id)}</span> → <b>${esc(e.variant)}</b>${e.holdout ? ` <span class="ksd-dim">holdout (draw ${esc(e.draw.toFixed(3))} &lt; ${esc(e.holdoutFraction)})</span>` : ""}</div><div class="ksd-explain">${rows}</div></li>`;
    })
    .join("")}</ul>`;
}

function explainView(ks, id) {
  if (typeof ks.explain !== "function") return `<div class="ksd-explain ksd-empty">explain() is not available in this build</div>`;
  const e = ks.explain(id);
  if (!e) return `<div class="ksd-explain ksd-empty">no explanation</div>`;
  return `<div class="ksd-explain">${e.tree ? node(e.tree) : `<pre>${json(e)}</pre>`}</div>`;
}

function node(n) {
  if (!n || typeof n !== "object") return `<code>${short(n)}</code>`;
  const kids = Array.isArray(n.children) && n.children.length ? `<ul>${n.children.map((c) => `<li>${node(c)}</li>`).join("")}</ul>` : "";
  const extra = [];
  if ("value" in n) extra.push(`value <code>${short(n.value)}</code>`);
  if ("expected" in n) extra.push(`expected <code>${short(n.expected)}</code>`);
  return `<div class="ksd-node">${mark(n.result)}<b>${esc(n.op ?? "")}</b>${n.path ? ` <code>${esc(n.path)}</code>` : ""} <span class="ksd-dim">${extra.join(" · ")}</span></div>${kids}`;
}

function eventsView(log) {
  const items = log ? log.stream.slice().reverse() : [];
  if (!items.length) return `<p class="ksd-empty">Nothing yet: browse the shop.</p>`;
  return `<ol class="ksd-stream">${items
    .map(
      (e) => `<li><span class="ksd-time">${time(e.at)}</span><span class="ksd-badge ${e.kind}-${e.name.replace(/[^a-z]/gi, "")}">${esc(e.name)}</span><code>${short(e.detail)}</code></li>`,
    )
    .join("")}</ol>`;
}

// What Keystone pushed to the page's dataLayer (only with marketing consent: Privacy choices).
function dataLayerView() {
  const pushes = (Array.isArray(window.dataLayer) ? window.dataLayer : []).filter((e) => e && /^keystone\./.test(e.event));
  return `<p>Data layer: ${
    pushes.length
      ? `${pushes.length} push${pushes.length === 1 ? "" : "es"} for tags, the last <code>${esc(JSON.stringify(pushes[pushes.length - 1]))}</code>`
      : "nothing pushed (marketing consent not granted: see Privacy choices at the bottom of the page)"
  }</p>`;
}

function outboundView(ks, log) {
  const queued = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (/^ks_q\./.test(k)) queued.push([k, (localStorage.getItem(k) || "").length]);
    }
  } catch (_) {}
  const batches = log ? log.outbound.slice().reverse() : [];
  return `<p class="ksd-hint">Events leave in Segment-spec batches for <code>POST /v1/batch</code> (the local collector; see out/collector.jsonl).</p>
  <p>${queued.length ? queued.map(([k, n]) => `Stored queue <code>${esc(k)}</code>: ${n} bytes`).join("<br>") : "No stored queue on this device."}</p>
  <button class="ksd-btn" data-action="flush">Flush now</button>
  ${dataLayerView()}
  ${
    batches.length
      ? `<ol class="ksd-stream">${batches
          .map(
            (b) => `<li><span class="ksd-time">${time(b.at)}</span><span class="ksd-badge out">${esc(b.via)} · ${esc(b.status)}</span>${b.events.length} event${b.events.length === 1 ? "" : "s"}: <code>${esc(
              b.events.map((e) => e.event || e.name || e.type).join(", "),
            )}</code><details><summary>batch</summary><pre>${json(b.events)}</pre></details></li>`,
          )
          .join("")}</ol>`
      : `<p class="ksd-empty">No batch sent yet from this page.</p>`
  }`;
}
