// One appeal: the registration number first, status, SLA clocks, the full timeline, the
// evidence, and the actions the signed-in role may take (the others are shown disabled; the
// API refuses them too: the policy table in src/api/policy.rs is the authority).
import { HttpError, get, post } from "../api";
import { clear, debounce, h } from "../dom";
import { code, fmtDateTime, t } from "../i18n";
import { onChange } from "../live";
import type { Ctx } from "../main";
import type { Appeal, Evidence, TimelineEvent } from "../types";
import { clock, field, images, statusBadge } from "./common";

/// Verb → roles allowed (mirrors src/api/policy.rs) and the statuses it applies from.
const ACTIONS: { verb: string; roles: string[]; from: string[] }[] = [
  { verb: "confirm", roles: ["inspector", "supervisor"], from: ["detected", "awaiting_confirmation"] },
  { verb: "start", roles: ["dispatcher", "supervisor"], from: ["assigned"] },
  { verb: "resolve", roles: ["inspector", "supervisor"], from: ["assigned", "in_progress"] },
  { verb: "close", roles: ["supervisor"], from: ["resolved"] },
  { verb: "reopen", roles: ["supervisor"], from: ["resolved", "closed"] },
];

export function mountAppeal(ctx: Ctx, number: string): () => void {
  const page = h("section", { id: "appeal", "data-number": number });
  const message = h("p", { id: "appeal-message", role: "status" });
  ctx.root.append(page);

  async function act(verb: string): Promise<void> {
    const body: Record<string, string> = {};
    if (verb === "close") body.confirmed_by = "inspector";
    try {
      await post(`/api/v1/appeals/${encodeURIComponent(number)}/${verb}`, body);
      message.textContent = t("appeal.done", { action: code("action", verb) });
    } catch (e) {
      message.textContent =
        e instanceof HttpError && e.status === 403 ? t("appeal.refused", { action: code("action", verb) }) : t("appeal.failed", { error: (e as Error).message });
    }
    await load();
  }

  async function load(): Promise<void> {
    let appeal: Appeal;
    try {
      appeal = await get<Appeal>(`/api/v1/appeals/${encodeURIComponent(number)}`);
    } catch {
      clear(page, h("h2", {}, t("appeal.not_found", { number })));
      return;
    }
    const [timeline, evidence] = await Promise.all([
      get<TimelineEvent[]>(`/api/v1/appeals/${encodeURIComponent(number)}/timeline`),
      get<Evidence[]>(`/api/v1/appeals/${encodeURIComponent(number)}/evidence`),
    ]);
    const actions = ACTIONS.filter((a) => a.from.includes(appeal.status) || a.verb === "close");
    clear(
      page,
      h("a", { href: "#/board", class: "back" }, t("appeal.back")),
      h("h2", { class: "reg-number big", id: "appeal-number" }, appeal.number),
      h(
        "dl",
        { class: "facts" },
        field(t("field.status"), statusBadge(appeal.status), "appeal-status"),
        field(t("field.category"), code("category", appeal.category)),
        field(t("field.address"), appeal.address ?? "—"),
        field(t("field.district"), appeal.district ?? "—"),
        field(t("field.body"), appeal.body_name ?? "—"),
        field(t("field.source"), code("source", appeal.source)),
        field(t("field.registered"), fmtDateTime(appeal.registered_at)),
      ),
      h("h3", {}, t("appeal.deadlines")),
      h(
        "ul",
        { class: "deadlines" },
        appeal.deadlines.map((d) => h("li", {}, clock(d), " · ", t("appeal.due", { at: fmtDateTime(d.due_at) }))),
      ),
      h(
        "div",
        { class: "actions" },
        actions.map((a) => {
          const allowed = ctx.has(...a.roles);
          return h(
            "button",
            {
              type: "button",
              id: "action-" + a.verb,
              disabled: !allowed || !a.from.includes(appeal.status),
              title: allowed ? "" : t("appeal.not_your_role"),
              onclick: () => void act(a.verb),
            },
            code("action", a.verb),
          );
        }),
        actions.some((a) => !ctx.has(...a.roles)) ? h("span", { class: "muted", id: "appeal-role-note" }, t("appeal.not_your_role")) : null,
      ),
      message,
      h("h3", {}, t("appeal.evidence", { n: evidence.length })),
      h(
        "div",
        { class: "thumbs" },
        evidence.map((e) => {
          const u = images(e).annotated;
          return h("figure", {}, u ? h("img", { src: u, alt: fmtDateTime(e.observed_at) }) : null, h("figcaption", {}, `${fmtDateTime(e.observed_at)} · ${code("source", e.source)}`));
        }),
      ),
      h("h3", {}, t("appeal.timeline")),
      h(
        "ol",
        { class: "timeline", id: "appeal-timeline" },
        timeline.map((e) =>
          h(
            "li",
            {},
            h("time", {}, fmtDateTime(e.at)),
            " ",
            h("strong", {}, code("event", e.kind)),
            e.to_status ? [" → ", statusBadge(e.to_status)] : null,
            e.reason ? " · " + code("reason", e.reason, e.reason) : null,
            " · ",
            e.actor,
          ),
        ),
      ),
    );
  }

  load();
  const refresh = debounce(() => void load(), 300);
  const unsubscribe = onChange((c) => {
    if (!c || c.number === number) refresh();
  });
  return unsubscribe;
}
