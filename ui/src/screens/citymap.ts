// The city map: the city's own layers (districts, streets), cameras by state, open appeals
// (overdue in red) and sensor alarms; live for appeals.
import { get, getPage, query } from "../api";
import { debounce, h } from "../dom";
import { t } from "../i18n";
import { onChange } from "../live";
import { cityMap, onPointClick, point, setPoints } from "../map";
import type { Ctx } from "../main";
import type { Appeal, Camera } from "../types";
import { nextDeadline } from "./common";

/// Cameras drawn at most (pages of the camera API).
const MAX_CAMERAS = 20_000;

export function mountCityMap(ctx: Ctx): () => void {
  const box = h("div", { id: "city-map", class: "bigmap" });
  const legend = h(
    "p",
    { class: "legend" },
    h("span", { class: "dot camera" }), t("map.cameras"), " ",
    h("span", { class: "dot appeal" }), t("map.appeals"), " ",
    h("span", { class: "dot overdue" }), t("map.overdue"), " ",
    h("span", { class: "dot alarm" }), t("map.alarms"),
  );
  ctx.root.append(h("section", { id: "map" }, legend, box));
  const map = cityMap(box, ctx.site);
  if (!map) {
    box.textContent = t("map.no_webgl");
    return () => {};
  }

  async function cameras(): Promise<void> {
    const features = [];
    for (let offset = 0; offset < MAX_CAMERAS; offset += 1000) {
      const page = await getPage<Camera>("/api/cameras" + query({ offset, limit: 1000 }));
      features.push(...page.items.map((c) => point(c.lon, c.lat, { id: c.id, state: c.state })));
      if (offset + 1000 >= page.total) break;
    }
    setPoints(map!, "cameras", features, ["match", ["get", "state"], "streaming", "#1a7f37", "failed", "#82071e", "stalled", "#cf222e", "#9a6700"], 3);
  }

  async function appeals(): Promise<void> {
    const list = await get<Appeal[]>("/api/v1/appeals" + query({ open_only: "true", limit: 500 }));
    setPoints(
      map!,
      "appeals",
      list.map((a) => point(a.position.lon, a.position.lat, { number: a.number, overdue: nextDeadline(a)?.overdue ? 1 : 0 })),
      ["case", ["==", ["get", "overdue"], 1], "#d1242f", "#0969da"],
      6,
    );
  }

  async function alarms(): Promise<void> {
    try {
      const list = await get<any[]>("/api/sensors/alarms");
      setPoints(map!, "alarms", list.filter((a) => a.lat !== undefined).map((a) => point(a.lon, a.lat, { id: a.sensor ?? a.id })), "#8250df", 6);
    } catch {
      /* no sensors on this node */
    }
  }

  void cameras();
  void appeals();
  void alarms();
  onPointClick(map, "appeals", (p) => (location.hash = "#/appeal/" + encodeURIComponent(String(p.number))));
  map.on("load", () => (document.body.dataset.map = "1"));
  const refresh = debounce(() => void appeals(), 500);
  const unsubscribe = onChange(() => refresh());
  return () => {
    unsubscribe();
    map.remove();
  };
}
