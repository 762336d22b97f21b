"use strict";
const COLORS = { streaming: "#1a7f37", connecting: "#d4a72c", backing_off: "#fb8500", stalled: "#cf222e", failed: "#82071e" };
let site = null, cameras = [], selected = null;

function el(tag, attrs, text) {
  const e = document.createElementNS(tag === "svg" || attrs.svg ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs)) if (k !== "svg") e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
// The map frames the cameras (with a margin), inside the site's bounds.
function extent() {
  if (!cameras.length) return site.bounds;
  let b = { south: 90, north: -90, west: 180, east: -180 };
  for (const c of cameras) {
    b.south = Math.min(b.south, c.lat); b.north = Math.max(b.north, c.lat);
    b.west = Math.min(b.west, c.lon); b.east = Math.max(b.east, c.lon);
  }
  const m = Math.max(b.north - b.south, b.east - b.west, 0.002) * 0.08;
  return { south: b.south - m, north: b.north + m, west: b.west - m, east: b.east + m };
}
function project(lat, lon, b) {
  // Equirectangular, x scaled by cos(latitude) so that streets keep their shape.
  const k = Math.cos((b.north + b.south) / 2 * Math.PI / 180);
  const w = (b.east - b.west) * k, h = b.north - b.south, s = Math.min(1000 / w, 700 / h);
  const ox = (1000 - w * s) / 2, oy = (700 - h * s) / 2;
  return [ ox + (lon - b.west) * k * s, oy + (b.north - lat) * s ];
}
function drawMap() {
  const svg = document.getElementById("map");
  svg.replaceChildren();
  const b = extent();
  for (const c of cameras) {
    const [x, y] = project(c.lat, c.lon, b);
    const dot = el("circle", { svg: 1, cx: x.toFixed(1), cy: y.toFixed(1), r: c.id === selected ? 9 : 5,
      fill: COLORS[c.state] || "#888", stroke: "#fff", "stroke-width": 1, "data-camera": c.id });
    dot.appendChild(el("title", { svg: 1 }, `${c.id} ${c.name}: ${c.state}`));
    dot.addEventListener("click", () => select(c.id));
    svg.appendChild(dot);
  }
}
function drawTable() {
  const q = document.getElementById("filter").value.toLowerCase();
  const rows = document.getElementById("rows");
  rows.replaceChildren();
  for (const c of cameras) {
    if (q && !`${c.id} ${c.name} ${c.state} ${c.reason_text}`.toLowerCase().includes(q)) continue;
    const tr = el("tr", { "data-camera": c.id, class: c.id === selected ? "sel" : "" });
    tr.appendChild(el("td", {}, c.id));
    tr.appendChild(el("td", { class: "state " + c.state }, c.state.replace("_", " ")));
    tr.appendChild(el("td", {}, c.reason_text));
    tr.appendChild(el("td", {}, c.frames_decoded));
    tr.appendChild(el("td", {}, c.frames_dropped));
    tr.appendChild(el("td", {}, c.reconnects));
    tr.appendChild(el("td", {}, c.last_frame_age_s == null ? "—" : c.last_frame_age_s.toFixed(1) + " s ago"));
    tr.addEventListener("click", () => select(c.id));
    rows.appendChild(tr);
  }
}
function drawCounts() {
  const n = {};
  for (const c of cameras) n[c.state] = (n[c.state] || 0) + 1;
  const div = document.getElementById("counts");
  div.replaceChildren();
  div.appendChild(el("span", {}, `${cameras.length} cameras`));
  for (const s of Object.keys(COLORS)) if (n[s]) div.appendChild(el("span", { class: s, id: "count-" + s }, `${s.replace("_", " ")}: ${n[s]}`));
}
function drawDetail() {
  const d = document.getElementById("detail");
  const c = cameras.find(c => c.id === selected);
  if (!c) return;
  d.replaceChildren();
  d.appendChild(el("h3", {}, `${c.id} — ${c.name}`));
  d.appendChild(el("p", { class: "reason" }, `${c.address} · ${c.state}: ${c.reason_text}`));
  const img = el("img", { alt: "latest sampled frame", src: `/api/cameras/${encodeURIComponent(c.id)}/snapshot.jpg?t=${Date.now()}` });
  img.onerror = () => img.replaceWith(el("p", {}, "Waiting for the next sampled frame…"));
  d.appendChild(img);
}
// Recent detection events (newest first), each with its annotated evidence as a link.
async function refreshEvents() {
  try {
    const r = await fetch("/api/events");
    if (!r.ok) return;
    const events = await r.json();
    const ul = document.getElementById("events");
    if (!events.length) return;
    ul.replaceChildren();
    for (const e of events.slice(0, 50)) {
      const li = el("li", { id: "event-" + e.id });
      const when = new Date(e.at).toLocaleString();
      li.appendChild(el("span", { class: e.kind }, `${when} · ${e.camera} · ${e.kind}: ${e.category} (${e.class} ${e.score.toFixed(2)})${e.zone ? " in " + e.zone : ""} `));
      if (e.evidence) {
        const a = el("a", { href: `/api/events/${encodeURIComponent(e.id)}/evidence.jpg`, target: "_blank" }, "evidence");
        li.appendChild(a);
        li.appendChild(el("span", {}, " · "));
        li.appendChild(el("a", { href: `/api/events/${encodeURIComponent(e.id)}/clean.jpg`, target: "_blank" }, "clean"));
      }
      li.addEventListener("click", () => select(e.camera));
      ul.appendChild(li);
    }
  } catch (e) { /* the camera refresh reports an unreachable API */ }
}
function select(id) { selected = id; drawMap(); drawTable(); drawDetail(); }
async function refresh() {
  try {
    const r = await fetch("/api/cameras");
    cameras = await r.json();
    drawCounts(); drawMap(); drawTable();
    document.body.dataset.loaded = "1";
  } catch (e) { document.getElementById("counts").textContent = "API unreachable: " + e; }
}
let csrf = "";
/// The signed-in user, or the sign-in form when there is none.
async function signedIn() {
  const r = await fetch("/api/auth/me");
  if (r.status !== 200) return null;
  return r.json();
}
function showLogin() {
  const form = document.getElementById("login");
  form.hidden = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        user: document.getElementById("login-user").value,
        password: document.getElementById("login-password").value,
      }),
    });
    if (r.status === 200) { form.hidden = true; start(); return; }
    const answer = await r.json().catch(() => ({}));
    document.getElementById("login-error").textContent = answer.error || ("sign-in failed: " + r.status);
  }, { once: true });
}
async function start() {
  const me = await signedIn();
  if (!me) { showLogin(); return; }
  csrf = me.csrf || "";
  document.getElementById("who").textContent = `${me.user} (${me.roles.join(", ")})`;
  document.getElementById("app").hidden = false;
  site = await (await fetch("/api/site")).json();
  document.getElementById("title").textContent = `sitcenter — ${site.name}${site.city ? " (" + site.city + ")" : ""}`;
  document.getElementById("filter").addEventListener("input", drawTable);
  await refresh();
  refreshEvents();
  setInterval(refresh, 2000);
  setInterval(refreshEvents, 3000);
  setInterval(() => selected && drawDetail(), 4000);
}
start();
