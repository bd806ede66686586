// Keystone Outfitters — the demo shop. Every page loads this module: it draws the header and the
// page's catalogue content, starts Keystone (segments from /segments.json, events to the local
// collector), records the shop's commerce events, and opens the debug panel on
// `?keystone_debug=1` or Alt+K. Personalized blocks are plain HTML with data-keystone-* attributes.
import { Keystone } from "/pkg/dist/keystone.js";
import { CATEGORIES, PRODUCTS, product, crmLookup } from "/catalog.js";
import { recorder } from "/recorder.js";
import { icon, fillIcons } from "/icons.js";

const $ = (sel, el = document) => el.querySelector(sel);
const params = new URLSearchParams(location.search);
const page = document.body.dataset.page;
const BESTSELLERS = ["trail-runner", "daypack", "tent", "duffel"];
const money = (n) => "€" + n.toFixed(2).replace(/\.00$/, "");
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

// ---- the shop's own state in localStorage: the cart, and the signed-in visitor's first name ---
// (never the email: Keystone keeps only its hash)
const CART_KEY = "shop_cart";
const cart = {
  items: () => {
    try {
      return JSON.parse(localStorage.getItem(CART_KEY)) || [];
    } catch (_) {
      return [];
    }
  },
  save: (items) => localStorage.setItem(CART_KEY, JSON.stringify(items)),
  add(id) {
    const items = cart.items();
    const line = items.find((l) => l.id === id);
    if (line) line.qty++;
    else items.push({ id, qty: 1 });
    cart.save(items);
  },
  clear: () => localStorage.removeItem(CART_KEY),
  total: () => cart.items().reduce((s, l) => s + (product(l.id)?.price || 0) * l.qty, 0),
  count: () => cart.items().reduce((s, l) => s + l.qty, 0),
};
// The shop's sign-in: the first name for the header on the device; the email in the demo
// server's session (`/shop/session`: an HttpOnly cookie holds a random id), as a shop's backend
// keeps it.
const account = {
  get: () => localStorage.getItem("shop_account"),
  set: (name, email) => {
    name ? localStorage.setItem("shop_account", name) : localStorage.removeItem("shop_account");
    // (keepalive: the page may be left at once.)
    return fetch("/shop/session", { method: name ? "POST" : "DELETE", body: email, keepalive: true }).catch(() => {});
  },
};

/** The shop's session says someone is signed in, Keystone does not: it keeps no profile while
 * personalization is off, so once it is on again (on this page or a later one) the shop signs
 * that person in again, as a site calls `identify` for its signed-in visitor. */
async function resumeSession() {
  if (!ks || !account.get() || ks.userId() || !ks.profile().consent.personalization) return;
  const email = await fetch("/shop/session").then((r) => (r.status == 200 ? r.text() : ""), () => "");
  if (email && !ks.userId()) await ks.identify(email, crmLookup(email)).then(() => (syncCart(), updateChrome()), () => {});
}

// ---- page chrome ---------------------------------------------------------------------------
function drawChrome() {
  const nav = Object.entries(CATEGORIES)
    .map(([id, c]) => `<a href="/category.html?c=${id}"${page === "category" && params.get("c") === id ? ' aria-current="page"' : ""}>${c.name}</a>`)
    .join("");
  document.body.insertAdjacentHTML(
    "afterbegin",
    `<div class="topbar">Free returns for 60 days · This shop personalizes on your device with Keystone — <span class="kbd-hint">open the debug panel with <kbd>Alt</kbd>+<kbd>K</kbd></span><span class="touch-hint">the debug panel is linked at the bottom</span></div>
<header class="site"><div class="site-inner">
  <a class="brand" href="/"><span class="brand-mark">◆</span>Keystone Outfitters</a>
  <nav class="main">${nav}</nav>
  <div class="header-tools">
    <span class="greeting">Hi, <span id="greeting-name" data-keystone-text="traits.firstName">there</span></span>
    <span class="pill badge-gold" id="gold-badge" data-keystone-show="gold" hidden>★ Gold</span>
    <a class="pill" id="account-link" href="/account.html">Sign in</a>
    <a class="pill" href="/cart.html">Cart <span class="count" id="cart-count">0</span></a>
  </div>
</div></header>`,
  );
  document.body.insertAdjacentHTML(
    "beforeend",
    `<footer class="site"><div class="site-inner">
  <span>© Keystone Outfitters — a demo shop for keystone-cdp</span>
  <span><a href="/account.html" data-keystone-track="Newsletter Clicked">Newsletter</a> · <button type="button" class="linklike" id="privacy-open">Privacy choices</button> · <a id="debug-link" href="?keystone_debug=1">Debug panel</a></span>
</div></footer>
<dialog id="privacy" aria-labelledby="privacy-title"><form method="dialog">
  <h2 id="privacy-title">Privacy choices</h2>
  <p class="muted">Keystone keeps your profile on this device. Choose what it may do with it.</p>
  <label><input type="checkbox" name="analytics"> <b>Analytics</b> — events sent to the shop's collector</label>
  <label><input type="checkbox" name="personalization"> <b>Personalization</b> — the profile kept on this device, segments, personalized pages</label>
  <label><input type="checkbox" name="marketing"> <b>Marketing</b> — segment changes pushed to the page's <code>dataLayer</code> for tags</label>
  <p class="muted" id="privacy-gpc" hidden>Your browser sends Global Privacy Control: marketing stays off.</p>
  <div class="privacy-actions">
    <button class="btn" value="save">Save choices</button>
    <button class="btn ghost" value="forget" type="submit">Forget me on this device</button>
    <button class="btn ghost" value="cancel" formnovalidate>Close</button>
  </div>
</form></dialog>`,
  );
  // The debug link reopens this very page (its ?id= or ?c= kept) with the panel.
  const dbg = new URL(location.href);
  dbg.searchParams.set("keystone_debug", "1");
  $("#debug-link").href = dbg.pathname + dbg.search;
  updateChrome();
}

function updateChrome() {
  $("#cart-count").textContent = String(cart.count());
  $("#account-link").textContent = account.get() ? "Account" : "Sign in";
}

const card = (p) => `<a class="card" href="/product.html?id=${p.id}">
  <div class="card-art tint-${p.category}">${icon(CATEGORIES[p.category].icon)}</div>
  <div class="card-body"><div class="card-title">${esc(p.name)}</div><div class="card-meta">${CATEGORIES[p.category].name} · <span class="price">${money(p.price)}</span></div></div></a>`;

// Fills every [data-products="category"] container with that category's cards.
function drawProductGrids(root = document) {
  for (const el of root.querySelectorAll("[data-products]")) {
    const c = el.dataset.products;
    el.innerHTML = (c === "bestsellers" ? BESTSELLERS.map(product) : PRODUCTS.filter((p) => p.category === c && p.id !== el.dataset.exclude))
      .slice(0, Number(el.dataset.limit) || 99)
      .map(card)
      .join("");
  }
}

// ---- pages: each draws itself before Keystone is ready and returns what to record once it is ----
let ks = null;
// The cart lives in the shop; the profile keeps its size as the trait `cartItems` (the cart
// reminder's segment reads it), updated only when it differs (each setTraits is an identify).
function syncCart() {
  const n = cart.count();
  if (ks && (ks.profile().traits.cartItems ?? 0) !== n) ks.setTraits({ cartItems: n });
}
const pages = {
  home() {
    $("#categories").innerHTML = Object.entries(CATEGORIES)
      .map(([id, c]) => `<a class="card" href="/category.html?c=${id}"><div class="card-art tint-${id}">${icon(c.icon)}</div><div class="card-body"><div class="card-title">${c.name}</div><div class="card-meta">${c.blurb}</div></div></a>`)
      .join("");
  },
  category() {
    const id = CATEGORIES[params.get("c")] ? params.get("c") : "shoes";
    const c = CATEGORIES[id];
    document.title = c.name + " — Keystone Outfitters";
    $("#category-title").textContent = $("#crumb").textContent = c.name;
    $("#category-blurb").textContent = c.blurb;
    $("#category-grid").dataset.products = id;
    drawProductGrids();
    return () => ks.track("Product List Viewed", { category: id });
  },
  product() {
    const p = product(params.get("id")) || PRODUCTS[0];
    const c = CATEGORIES[p.category];
    document.title = p.name + " — Keystone Outfitters";
    $("#crumb-category").textContent = c.name;
    $("#crumb-category").href = "/category.html?c=" + p.category;
    $("#product-art").innerHTML = icon(c.icon);
    $("#product-art").classList.add("tint-" + p.category);
    $("#product-name").textContent = p.name;
    $("#product-price").textContent = money(p.price);
    $("#related").dataset.products = p.category;
    $("#related").dataset.exclude = p.id;
    drawProductGrids();
    const props = { product_id: p.id, name: p.name, category: p.category, price: p.price, currency: "EUR" };
    $("#add-to-cart").addEventListener("click", () => {
      cart.add(p.id);
      ks?.track("Product Added", { ...props, quantity: 1 });
      syncCart();
      updateChrome();
      $("#added").hidden = false;
      $("#added").scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
    return () => ks.track("Product Viewed", props);
  },
  cart() {
    const draw = () => {
      const items = cart.items();
      $("#cart-empty").hidden = items.length > 0;
      $("#cart-full").hidden = items.length === 0;
      $("#cart-lines").innerHTML = items
        .map((l) => {
          const p = product(l.id);
          return p ? `<tr><td>${esc(p.name)}</td><td class="num">${l.qty}</td><td class="num">${money(p.price * l.qty)}</td></tr>` : "";
        })
        .join("");
      $("#cart-total").textContent = money(cart.total());
    };
    draw();
    $("#checkout").addEventListener("click", () => {
      const items = cart.items();
      const revenue = cart.total();
      ks?.track("Order Completed", {
        order_id: "o-" + Date.now().toString(36),
        revenue,
        currency: "EUR",
        products: items.map((l) => ({ product_id: l.id, quantity: l.qty, price: product(l.id)?.price || 0 })),
      });
      cart.clear();
      syncCart();
      draw();
      updateChrome();
      $("#thanks").hidden = false;
    });
  },
  account() {
    const draw = () => {
      const name = account.get();
      $("#signed-out").hidden = !!name;
      $("#signed-in").hidden = !name;
      $("#signed-in-name").textContent = name || "";
    };
    draw();
    // The form's own check matches Keystone's (a dot in the domain: `ada@localhost` is refused).
    $("#email").addEventListener("invalid", () => ($("#login-error").textContent = "Enter a full email address, such as ada@example.com."));
    $("#email").addEventListener("input", () => ($("#login-error").textContent = ""));
    $("#login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const email = $("#email").value.trim();
      if (!email) return;
      // The shop's backend would answer this; the CRM trait `tier` drives the gold segment.
      const traits = crmLookup(email);
      try {
        if (ks) await ks.identify(email, traits);
        syncCart(); // the known profile may hold another cart's size
      } catch (err) {
        $("#login-error").textContent = "Keystone: " + (err.code || err.message);
        return;
      }
      await account.set(traits.firstName, email);
      draw();
      updateChrome();
      if (params.get("return") !== "stay") location.href = "/";
    });
    $("#logout").addEventListener("click", () => {
      ks?.reset();
      account.set(null);
      cart.clear();
      draw();
      updateChrome();
    });
  },
};

// ---- start -------------------------------------------------------------------------------------
drawChrome();
drawProductGrids();
fillIcons();
for (const t of document.querySelectorAll("template")) fillIcons(t.content); // experience variants
const afterInit = pages[page] && pages[page]();
document.body.classList.add("drawn"); // shown once the chrome and grids are in: no layout shift
const log = recorder(); // the debug panel's event stream and outbound log, from the first request

// The visitor's privacy choices, kept by the shop as a consent banner would keep them (Keystone's
// own storage is what forget() erases): absent, Keystone's default (opt-out).
let choice;
try {
  choice = JSON.parse(localStorage.getItem("shop_consent")) || undefined;
} catch (_) {}
ks = await Keystone.init({
  consent: choice,
  segments: "/segments.json",
  endpoint: "/v1/batch",
  writeKey: "demo-key",
  dataLayer: true,
  trackSegments: true,
}).catch((e) => {
  console.warn("Keystone did not start:", e.code);
  return null;
});
if (ks) {
  window.ks = ks;
  log.attach(ks);
  if (afterInit) afterInit();
  syncCart();
  resumeSession();
  ks.on("identify", updateChrome).on("reset", updateChrome);
}
// ---- privacy choices: Keystone's consent categories (DESIGN §6), and forget() ----------------
const privacy = $("#privacy");
$("#privacy-open").addEventListener("click", () => {
  const c = ks?.profile()?.consent || {};
  for (const k of ["analytics", "personalization", "marketing"]) privacy.querySelector(`[name=${k}]`).checked = c[k] !== false;
  $("#privacy-gpc").hidden = navigator.globalPrivacyControl !== true;
  privacy.returnValue = ""; // (Escape keeps the last value otherwise)
  privacy.showModal();
});
privacy.addEventListener("close", async () => {
  if (!ks) return;
  const keep = (c) => localStorage.setItem("shop_consent", JSON.stringify(c));
  if (privacy.returnValue === "save") {
    const c = {};
    for (const k of ["analytics", "personalization", "marketing"]) c[k] = privacy.querySelector(`[name=${k}]`).checked;
    keep(c);
    await ks.setConsent(c).catch(() => {});
    resumeSession();
  } else if (privacy.returnValue === "forget") {
    await ks.forget().catch(() => {});
    // Nothing is stored or sent again until the visitor chooses otherwise here.
    keep({ analytics: false, personalization: false, marketing: false });
    account.set(null);
    cart.clear();
    location.href = "/";
  }
});

// Another tab of the shop signing in or out, or changing the cart: this tab's header follows
// (Keystone's own state follows by itself; the shop's is its own).
addEventListener("storage", (e) => (e.key === null || e.key === "shop_account" || e.key === CART_KEY) && updateChrome());
document.documentElement.dataset.shopReady = ks ? "1" : "failed";

// ---- debug panel: ?keystone_debug=1, or Alt+K (remembered for the tab) -------------------------
const openDebug = () => {
  sessionStorage.setItem("keystone_debug", "1");
  import("/debug.js").then((m) => m.openPanel(ks, log));
};
if (params.get("keystone_debug") === "1" || sessionStorage.getItem("keystone_debug") === "1") openDebug();
addEventListener("keydown", (e) => {
  if (e.altKey && (e.key === "k" || e.key === "K" || e.code === "KeyK")) {
    if (document.getElementById("ks-debug")) import("/debug.js").then((m) => m.closePanel());
    else openDebug();
  }
});
