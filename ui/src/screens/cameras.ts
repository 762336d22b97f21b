// The camera wall: one page of cameras at a time (the API pages and filters; the browser never
// loads 16,000 of them), each with its supervisor state and reason and its latest analysed
// frame. Thumbnails are fetched only for the tiles on screen.
import { getPage, query } from "../api";
import { clear, debounce, h } from "../dom";
import { code, fmtNumber, fmtSeconds, t } from "../i18n";
import type { Ctx } from "../main";
import type { Camera } from "../types";

const STATES = ["streaming", "connecting", "backing_off", "stalled", "failed", "refused"];
const PAGE = 48;
/// Thumbnails of the page on screen are refreshed this often (images only, one page).
const THUMB_REFRESH_MS = 15_000;

export function mountCameras(ctx: Ctx): () => void {
  const filter = { state: "", district: "", q: "" };
  let offset = 0;
  let total = 0;
  const grid = h("div", { class: "wall", id: "camera-wall" });
  const pager = h("div", { class: "pager" });
  const canSee = ctx.has("inspector", "dispatcher", "supervisor", "admin");
  const search = h("input", {
    id: "camera-filter",
    type: "search",
    placeholder: t("cameras.search"),
    oninput: debounce(() => {
      filter.q = search.value;
      offset = 0;
      void load();
    }, 250),
  });
  const district = h("input", {
    id: "camera-district",
    type: "search",
    placeholder: t("field.district"),
    oninput: debounce(() => {
      filter.district = district.value;
      offset = 0;
      void load();
    }, 250),
  });
  const state = h(
    "select",
    {
      id: "camera-state",
      onchange: () => {
        filter.state = state.value;
        offset = 0;
        void load();
      },
    },
    h("option", { value: "" }, t("filter.all")),
    STATES.map((s) => h("option", { value: s }, code("state", s))),
  );
  ctx.root.append(
    h("section", { id: "cameras" }, h("h2", {}, t("cameras.title")), h("div", { class: "filters" }, search, state, district), pager, grid),
  );

  async function load(): Promise<void> {
    const started = performance.now();
    const page = await getPage<Camera>("/api/cameras" + query({ ...filter, offset, limit: PAGE }));
    total = page.total;
    clear(
      grid,
      page.items.map((c) =>
        h(
          "article",
          { class: "tile state-" + c.state, "data-camera": c.id },
          canSee ? h("img", { loading: "lazy", alt: c.name, src: `/api/cameras/${encodeURIComponent(c.id)}/snapshot.jpg?t=${Date.now()}` }) : null,
          h("h3", {}, c.id, " ", h("span", { class: "muted" }, c.name)),
          h("p", {}, h("span", { class: "state" }, code("state", c.state)), " · ", c.reason_text),
          h(
            "p",
            { class: "muted" },
            t("cameras.counters", { frames: fmtNumber(c.frames_decoded), dropped: fmtNumber(c.frames_dropped) }),
            " · ",
            c.last_frame_age_s === null ? t("cameras.no_frame") : t("cameras.last_frame", { age: fmtSeconds(c.last_frame_age_s) }),
          ),
        ),
      ),
    );
    grid.querySelectorAll("img").forEach((img) => img.addEventListener("error", () => img.replaceWith(h("div", { class: "no-frame" }, t("cameras.waiting")))));
    clear(
      pager,
      h("button", { type: "button", id: "cameras-prev", disabled: offset === 0, onclick: () => ((offset = Math.max(0, offset - PAGE)), void load()) }, t("pager.prev")),
      h("span", { id: "cameras-range" }, t("pager.range", { from: fmtNumber(total ? offset + 1 : 0), to: fmtNumber(Math.min(offset + PAGE, total)), total: fmtNumber(total) })),
      h("button", { type: "button", id: "cameras-next", disabled: offset + PAGE >= total, onclick: () => ((offset += PAGE), void load()) }, t("pager.next")),
    );
    document.body.dataset.cameras = String(total);
    document.body.dataset.camerasMs = String(Math.round(performance.now() - started));
  }

  load();
  const timer = window.setInterval(() => {
    grid.querySelectorAll<HTMLImageElement>("img").forEach((img) => {
      img.src = img.src.replace(/t=\d+/, "t=" + Date.now());
    });
  }, THUMB_REFRESH_MS);
  return () => window.clearInterval(timer);
}
