// The review queue (inspectors): keyboard first. C confirm, R reject then 1–4 the reason,
// K reclassify then 1–9 the category, N / → next, P / ← previous, Z box ⇄ clean, Esc back.
// The server holds two claims for the inspector (the item on screen and the next), so the
// next item is already loaded when a verdict is given; two inspectors never get the same one.
import { HttpError, get, post } from "../api";
import { clear, debounce, h } from "../dom";
import { code, fmtDateTime, fmtNumber, t } from "../i18n";
import { onChange } from "../live";
import { cityMap, point, setPoints, type MapLib } from "../map";
import type { Ctx } from "../main";
import type { ReviewItem, Service } from "../types";
import { clock, detection, field, images, nextDeadline, statusBadge } from "./common";

const REASONS = ["false_positive", "duplicate", "already_handled", "out_of_scope"];

interface Claim {
  items: ReviewItem[];
  pending: number;
}

export function mountReview(ctx: Ctx): () => void {
  let items: ReviewItem[] = [];
  let index = 0;
  let pending = 0;
  let mode: "normal" | "reject" | "reclassify" = "normal";
  let clean = false;
  let busy = false;
  let services: Service[] = [];
  let miniMap: MapLib | null = null;
  let lastMessage = "";

  const view = h("section", { id: "review", class: "review" });
  const status = h("p", { id: "review-status", role: "status" });
  ctx.root.append(view);

  get<Service[]>("/api/v1/services").then((s) => (services = s)).catch(() => undefined);

  async function claim(): Promise<void> {
    try {
      const answer = await post<Claim>("/api/review/claim");
      const shown = items[index]?.appeal.number;
      items = answer.items;
      pending = answer.pending;
      const keep = items.findIndex((i) => i.appeal.number === shown);
      index = keep >= 0 ? keep : Math.min(index, Math.max(items.length - 1, 0));
      preload();
      render();
    } catch (e) {
      status.textContent = t("review.error", { error: (e as Error).message });
    }
  }

  function preload(): void {
    for (const item of items) {
      for (const e of item.evidence) {
        const urls = images(e);
        for (const url of [urls.annotated, urls.clean]) if (url) new Image().src = url;
      }
    }
  }

  function categories(current: string): Service[] {
    return services.filter((s) => s.code !== current).slice(0, 9);
  }

  // One mini map for the whole session, moved into each item's view and re-centred (building
  // a WebGL map per item costs more than the verdict itself).
  const mapBox = h("div", { id: "review-map", class: "minimap" });

  function render(): void {
    const item = items[index];
    status.textContent = lastMessage;
    if (!item) {
      clear(
        view,
        h("div", { id: "review-empty", class: "empty" }, h("h2", {}, t("review.empty")), h("p", {}, t("review.empty_hint"))),
        status,
      );
      view.dataset.number = "";
      return;
    }
    const a = item.appeal;
    view.dataset.number = a.number;
    view.dataset.mode = mode;
    const cameraEvidence = item.evidence.find((e) => e.source === "camera") ?? item.evidence[0];
    const det = detection(cameraEvidence);
    const urls = cameraEvidence ? images(cameraEvidence) : { annotated: null, clean: null };
    const src = clean ? urls.clean : urls.annotated;
    const figure = h("figure", { class: "evidence" });
    if (src) {
      const img = h("img", { id: "evidence-image", src, alt: t(clean ? "review.image_clean" : "review.image_box"), "data-variant": clean ? "clean" : "box" });
      figure.append(img, h("figcaption", {}, t(clean ? "review.image_clean" : "review.image_box")));
      if (det?.bbox && urls.clean) figure.append(crop(urls.clean, det));
    } else {
      figure.append(h("p", { class: "no-image" }, t("review.no_image")), h("p", { class: "description" }, a.description ?? ""));
    }
    const model = det?.model ? `${det.model.name} ${det.model.version}` : "—";
    const facts = h(
      "dl",
      { class: "facts" },
      field(t("field.category"), code("category", a.category, services.find((s) => s.code === a.category)?.name), "review-category"),
      field(t("field.status"), statusBadge(a.status)),
      field(t("field.sla"), clock(nextDeadline(a))),
      field(t("field.camera"), item.camera ?? "—", "review-camera"),
      field(t("field.address"), a.address ?? "—"),
      field(t("field.district"), a.district ?? "—"),
      field(t("field.class"), det?.class ?? "—"),
      field(t("field.score"), det?.score !== undefined ? fmtNumber(det.score, 2) : "—"),
      field(t("field.model"), model),
      field(t("field.registered"), fmtDateTime(a.registered_at)),
    );
    const earlier = item.evidence.filter((e) => e !== cameraEvidence);
    const side = h(
      "div",
      { class: "side" },
      h("h2", { class: "reg-number", id: "review-number" }, a.number),
      facts,
      mapBox,
      h("h3", {}, t("review.earlier_evidence", { n: earlier.length })),
      h(
        "div",
        { class: "thumbs" },
        earlier.map((e) => {
          const u = images(e).annotated;
          return u ? h("img", { src: u, alt: fmtDateTime(e.observed_at), title: fmtDateTime(e.observed_at) }) : h("span", {}, fmtDateTime(e.observed_at));
        }),
      ),
      h("h3", {}, t("review.camera_history")),
      item.camera_history.length
        ? h(
            "ul",
            { class: "history", id: "camera-history" },
            item.camera_history.map((v) =>
              h("li", { class: "verdict-" + v.verdict }, `${fmtDateTime(v.at)} · ${code("verdict", v.verdict)}${v.reason ? " · " + code("reason", v.reason) : ""} · ${v.number}`),
            ),
          )
        : h("p", { class: "muted" }, t("review.no_history")),
    );
    clear(
      view,
      h("div", { class: "queue-bar" }, t("review.position", { i: index + 1, n: items.length, pending: fmtNumber(pending) })),
      h("div", { class: "review-body" }, figure, side),
      prompt(a.category),
      keys(),
      status,
    );
    if (!miniMap) {
      miniMap = cityMap(mapBox, ctx.site, false);
      if (!miniMap) mapBox.textContent = t("map.no_webgl");
    }
    if (miniMap) {
      const map = miniMap;
      const centre = () => {
        map.resize();
        map.jumpTo({ center: [a.position.lon, a.position.lat], zoom: 14 });
      };
      if (map.loaded()) centre();
      else map.once("load", centre);
      setPoints(map, "here", [point(a.position.lon, a.position.lat)], "#d1242f", 7);
    }
  }

  function crop(url: string, det: any): HTMLElement {
    const canvas = h("canvas", { id: "evidence-crop", width: 240, height: 240, "aria-label": t("review.crop") });
    const img = new Image();
    img.onload = () => {
      const lb = det.letterbox ?? { scale: 1, pad_x: 0, pad_y: 0 };
      const [x1, y1, x2, y2] = det.bbox as number[];
      const ax1 = x1 * lb.scale + lb.pad_x, ay1 = y1 * lb.scale + lb.pad_y;
      const ax2 = x2 * lb.scale + lb.pad_x, ay2 = y2 * lb.scale + lb.pad_y;
      const side = Math.max(ax2 - ax1, ay2 - ay1, 8) * 1.6;
      const cx = (ax1 + ax2) / 2, cy = (ay1 + ay2) / 2;
      const g = canvas.getContext("2d");
      if (!g) return;
      g.imageSmoothingEnabled = false;
      g.drawImage(img, cx - side / 2, cy - side / 2, side, side, 0, 0, 240, 240);
      g.strokeStyle = "#ff2d55";
      g.lineWidth = 2;
      const k = 240 / side;
      g.strokeRect((ax1 - (cx - side / 2)) * k, (ay1 - (cy - side / 2)) * k, (ax2 - ax1) * k, (ay2 - ay1) * k);
    };
    img.src = url;
    return h("div", { class: "crop" }, canvas, h("span", {}, t("review.crop")));
  }

  function prompt(current: string): HTMLElement | null {
    if (mode === "reject")
      return h(
        "ol",
        { class: "choices", id: "reject-reasons" },
        REASONS.map((r, i) => h("li", { "data-key": i + 1 }, h("kbd", {}, String(i + 1)), " ", code("reason", r))),
      );
    if (mode === "reclassify")
      return h(
        "ol",
        { class: "choices", id: "reclassify-categories" },
        categories(current).map((s, i) => h("li", { "data-key": i + 1 }, h("kbd", {}, String(i + 1)), " ", code("category", s.code, s.name))),
      );
    return null;
  }

  function keys(): HTMLElement {
    const k = (key: string, label: string) => h("span", {}, h("kbd", {}, key), " ", t(label));
    return h(
      "p",
      { class: "keys" },
      k("C", "review.key_confirm"),
      k("R", "review.key_reject"),
      k("K", "review.key_reclassify"),
      k("N", "review.key_next"),
      k("P", "review.key_prev"),
      k("Z", "review.key_toggle"),
      k("Esc", "review.key_cancel"),
    );
  }

  async function decide(body: Record<string, string>): Promise<void> {
    const item = items[index];
    if (!item || busy) return;
    busy = true;
    mode = "normal";
    const started = performance.now();
    try {
      const answer = await post<{ appeal: { number: string }; created: string | null }>(`/api/review/${encodeURIComponent(item.appeal.number)}/verdict`, body);
      lastMessage =
        body.verdict === "confirm"
          ? t("review.done_confirm", { number: answer.appeal.number })
          : body.verdict === "reject"
            ? t("review.done_reject", { number: answer.appeal.number, reason: code("reason", body.reason) })
            : t("review.done_reclassify", { number: answer.appeal.number, created: answer.created ?? "—" });
    } catch (e) {
      lastMessage = e instanceof HttpError && e.status === 409 ? t("review.lost_claim") : t("review.error", { error: (e as Error).message });
    }
    // Show the next (already loaded) item at once, then top the claims up again.
    items.splice(index, 1);
    index = Math.min(index, Math.max(items.length - 1, 0));
    clean = false;
    render();
    // For the browser benchmark (benches/ui_browser.rs): verdict key → next item on screen.
    document.body.dataset.nextShownMs = String(Math.round(performance.now() - started));
    busy = false;
    document.body.dataset.verdicts = String(Number(document.body.dataset.verdicts ?? "0") + 1);
    await claim();
  }

  function onKey(ev: KeyboardEvent): void {
    const target = ev.target as HTMLElement;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key.toLowerCase();
    const item = items[index];
    if (!item) return;
    if (key === "escape") {
      mode = "normal";
      render();
      return;
    }
    if (mode === "reject" && /^[1-4]$/.test(key)) {
      decide({ verdict: "reject", reason: REASONS[Number(key) - 1] });
      return;
    }
    if (mode === "reclassify" && /^[1-9]$/.test(key)) {
      const target = categories(item.appeal.category)[Number(key) - 1];
      if (target) decide({ verdict: "reclassify", category: target.code });
      return;
    }
    switch (key) {
      case "c":
        decide({ verdict: "confirm" });
        break;
      case "r":
        mode = "reject";
        render();
        break;
      case "k":
        mode = "reclassify";
        render();
        break;
      case "n":
      case "arrowright":
        index = (index + 1) % items.length;
        mode = "normal";
        render();
        break;
      case "p":
      case "arrowleft":
        index = (index - 1 + items.length) % items.length;
        mode = "normal";
        render();
        break;
      case "z":
        clean = !clean;
        render();
        break;
      default:
        return;
    }
    ev.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  // New detections (or verdicts elsewhere) change the queue: top the claims up again. The
  // same call renews the claims held, so a slow decision does not lose its item.
  const refresh = debounce(() => void claim(), 300);
  const unsubscribe = onChange(() => refresh());
  const renew = window.setInterval(() => void claim(), 60_000);
  claim();
  return () => {
    document.removeEventListener("keydown", onKey);
    unsubscribe();
    window.clearInterval(renew);
    miniMap?.remove();
  };
}
