// From the verdicts: false-positive rates per camera, per model version and per class, and the
// export of verdicted items as a labelled set (docs/labels.md) for QA replays.
import { get, query } from "../api";
import { clear, h } from "../dom";
import { fmtNumber, fmtPercent, t } from "../i18n";
import type { Ctx } from "../main";

interface Rate {
  key: string;
  confirmed: number;
  rejected: number;
  fp_rate: number;
}
interface Stats {
  by_camera: Rate[];
  by_model: Rate[];
  by_class: Rate[];
}

export function mountQuality(ctx: Ctx): () => void {
  let days = 30;
  const body = h("div", { id: "quality-tables" });
  const exportLink = h("a", { id: "quality-export", class: "button", href: "/api/review/export?days=30", download: "review-export.json" }, t("quality.export"));
  const period = h(
    "select",
    {
      id: "quality-days",
      onchange: () => {
        days = Number(period.value);
        exportLink.setAttribute("href", "/api/review/export" + query({ days }));
        void load();
      },
    },
    [1, 7, 30, 90, 365].map((d) => h("option", { value: d, selected: d === days }, t("quality.days", { n: d }))),
  );
  ctx.root.append(h("section", { id: "quality" }, h("h2", {}, t("quality.title")), h("div", { class: "filters" }, period, exportLink), body));

  function table(title: string, rates: Rate[]): HTMLElement {
    return h(
      "div",
      { class: "rates" },
      h("h3", {}, t(title)),
      h(
        "table",
        { class: "grid" },
        h("thead", {}, h("tr", {}, ["quality.key", "quality.confirmed", "quality.rejected", "quality.fp_rate"].map((k) => h("th", {}, t(k))))),
        h(
          "tbody",
          {},
          rates.length
            ? rates.map((r) => h("tr", {}, h("td", {}, r.key || "—"), h("td", {}, fmtNumber(r.confirmed)), h("td", {}, fmtNumber(r.rejected)), h("td", {}, fmtPercent(r.fp_rate))))
            : h("tr", {}, h("td", { colspan: 4, class: "muted" }, t("quality.empty"))),
        ),
      ),
    );
  }

  async function load(): Promise<void> {
    const stats = await get<Stats>("/api/review/stats" + query({ days }));
    clear(body, table("quality.by_camera", stats.by_camera), table("quality.by_model", stats.by_model), table("quality.by_class", stats.by_class));
  }
  load();
  return () => {};
}
