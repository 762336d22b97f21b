// The deadline board: open appeals with their SLA clocks, overdue and nearly due first,
// filtered by district, body, category and source, grouped counts by category and body;
// live (refetched on every registry change pushed over SSE).
import { get, query } from "../api";
import { clear, debounce, h } from "../dom";
import { code, fmtDateTime, fmtNumber, t } from "../i18n";
import { onChange } from "../live";
import type { Ctx } from "../main";
import type { Appeal, Service } from "../types";
import { clock, nextDeadline, statusBadge, urgency } from "./common";

const SOURCES = ["camera", "sensor", "vehicle", "operator", "citizen"];
/// Open appeals fetched per refresh (the API's page bound).
const PAGE = 500;

export function mountBoard(ctx: Ctx): () => void {
  const filters = { district: "", body_id: "", category: "", source: "" };
  let services: Service[] = [];
  let seen = { districts: new Set<string>(), bodies: new Map<string, string>() };
  const summary = h("div", { class: "summary", id: "board-summary" });
  const table = h("tbody", { id: "board-rows" });
  const bar = h("div", { class: "filters" });
  ctx.root.append(
    h(
      "section",
      { id: "board" },
      h("h2", {}, t("board.title")),
      bar,
      summary,
      h(
        "table",
        { class: "grid" },
        h(
          "thead",
          {},
          h("tr", {}, ["board.number", "field.category", "field.body", "field.district", "field.source", "field.status", "field.sla", "field.registered"].map((k) => h("th", {}, t(k)))),
        ),
        table,
      ),
    ),
  );

  function select(name: keyof typeof filters, label: string, options: [string, string][]): HTMLElement {
    return h(
      "label",
      {},
      t(label),
      h(
        "select",
        {
          id: "filter-" + name,
          onchange: (ev: Event) => {
            filters[name] = (ev.target as HTMLSelectElement).value;
            void load();
          },
        },
        h("option", { value: "" }, t("filter.all")),
        options.map(([v, l]) => h("option", { value: v, selected: filters[name] === v }, l)),
      ),
    );
  }

  function renderFilters(): void {
    clear(
      bar,
      select("district", "field.district", [...seen.districts].sort().map((d) => [d, d])),
      select("body_id", "field.body", [...seen.bodies].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => [id, name])),
      select("category", "field.category", services.map((s) => [s.code, code("category", s.code, s.name)])),
      select("source", "field.source", SOURCES.map((s) => [s, code("source", s)])),
    );
  }

  async function load(): Promise<void> {
    const appeals = await get<Appeal[]>("/api/v1/appeals" + query({ open_only: "true", limit: PAGE, ...filters }));
    for (const a of appeals) {
      if (a.district) seen.districts.add(a.district);
      if (a.body_id) seen.bodies.set(a.body_id, a.body_name ?? a.body_id);
    }
    appeals.sort((x, y) => urgency(x) - urgency(y) || x.registered_at.localeCompare(y.registered_at));
    const byCategory = new Map<string, number>();
    const byBody = new Map<string, number>();
    for (const a of appeals) {
      byCategory.set(a.category, (byCategory.get(a.category) ?? 0) + 1);
      const body = a.body_name ?? t("board.no_body");
      byBody.set(body, (byBody.get(body) ?? 0) + 1);
    }
    const overdue = appeals.filter((a) => nextDeadline(a)?.overdue).length;
    clear(
      summary,
      h("span", { class: "count overdue" }, t("board.overdue", { n: fmtNumber(overdue) })),
      h("span", { class: "count" }, t("board.open", { n: fmtNumber(appeals.length) })),
      [...byCategory].map(([c, n]) => h("span", { class: "chip" }, `${code("category", c, services.find((s) => s.code === c)?.name)}: ${fmtNumber(n)}`)),
      [...byBody].slice(0, 8).map(([b, n]) => h("span", { class: "chip body" }, `${b}: ${fmtNumber(n)}`)),
    );
    clear(
      table,
      appeals.length
        ? appeals.map((a) => {
            const d = nextDeadline(a);
            return h(
              "tr",
              { "data-number": a.number, class: d?.overdue ? "overdue" : d && !d.met && d.remaining_minutes <= 60 ? "soon" : "" },
              h("td", {}, h("a", { class: "reg-number", href: "#/appeal/" + encodeURIComponent(a.number) }, a.number)),
              h("td", {}, code("category", a.category, services.find((s) => s.code === a.category)?.name)),
              h("td", {}, a.body_name ?? "—"),
              h("td", {}, a.district ?? "—"),
              h("td", {}, code("source", a.source)),
              h("td", {}, statusBadge(a.status)),
              h("td", {}, clock(d)),
              h("td", {}, fmtDateTime(a.registered_at)),
            );
          })
        : h("tr", {}, h("td", { colspan: 8, class: "muted" }, t("board.empty"))),
    );
    renderFilters();
    document.body.dataset.board = String(appeals.length);
  }

  get<Service[]>("/api/v1/services")
    .then((s) => (services = s))
    .catch(() => undefined)
    .finally(() => void load());
  const refresh = debounce(() => void load(), 300);
  const unsubscribe = onChange(() => refresh());
  // The clocks move without registry changes: redraw them every minute from the same data.
  const tick = window.setInterval(() => void load(), 60_000);
  return () => {
    unsubscribe();
    window.clearInterval(tick);
  };
}
