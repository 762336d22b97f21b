// Pieces several screens share: SLA clocks, evidence image URLs, small formatted fields.
import { h } from "../dom";
import { code, fmtDuration, t } from "../i18n";
import type { Appeal, Deadline, Evidence } from "../types";

/// The first SLA stage not met yet (the clock that matters now), else the last one.
export function nextDeadline(appeal: Appeal): Deadline | null {
  return appeal.deadlines.find((d) => !d.met) ?? appeal.deadlines[appeal.deadlines.length - 1] ?? null;
}

/// Sort key: overdue first (most overdue first), then least time left; no clock last.
export function urgency(appeal: Appeal): number {
  const d = nextDeadline(appeal);
  if (!d || d.met) return Number.MAX_SAFE_INTEGER;
  return d.remaining_minutes;
}

export function clock(d: Deadline | null): HTMLElement {
  if (!d) return h("span", { class: "clock" }, "—");
  const stage = code("stage", d.stage);
  if (d.met) return h("span", { class: "clock met" }, t("sla.met", { stage }));
  if (d.overdue || d.remaining_minutes < 0)
    return h("span", { class: "clock overdue" }, t("sla.overdue", { stage, time: fmtDuration(d.remaining_minutes) }));
  const soon = d.remaining_minutes <= 60;
  return h("span", { class: soon ? "clock soon" : "clock" }, t("sla.left", { stage, time: fmtDuration(d.remaining_minutes) }));
}

/// The images of an evidence row: [annotated, clean] URLs (either may be missing).
export function images(e: Evidence): { annotated: string | null; clean: string | null } {
  const urls = e.items.map((item, i) => (item.kind === "image" && item.uri ? `/api/evidence/${e.id}/${i}` : null)).filter((u): u is string => !!u);
  return { annotated: urls[0] ?? null, clean: urls[1] ?? urls[0] ?? null };
}

/// The detection facts recorded with a camera evidence row.
export function detection(e: Evidence | undefined): any {
  return e?.items.find((i) => i.data)?.data ?? null;
}

export function field(label: string, value: string | HTMLElement, id?: string): HTMLElement[] {
  return [h("dt", {}, label), h("dd", id ? { id } : {}, value)];
}

export function statusBadge(status: string): HTMLElement {
  return h("span", { class: "status status-" + status }, code("status", status));
}
