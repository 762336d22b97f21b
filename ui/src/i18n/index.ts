// Every UI string lives in the catalogues (ru default, kk, en); dates, numbers and durations
// are formatted by Intl in the user's language. The language is remembered per user on the
// server (POST /api/auth/language) and in this browser.
import en from "./en.json";
import kk from "./kk.json";
import ru from "./ru.json";

export type Lang = "ru" | "kk" | "en";
export const LANGS: Lang[] = ["ru", "kk", "en"];
const CATALOGUES: Record<Lang, Record<string, string>> = { ru, kk, en };
const LOCALES: Record<Lang, string> = { ru: "ru-RU", kk: "kk-KZ", en: "en-GB" };

let lang: Lang = "ru";

export function setLang(next: string): Lang {
  lang = (LANGS as string[]).includes(next) ? (next as Lang) : "ru";
  document.documentElement.lang = lang;
  return lang;
}

export function currentLang(): Lang {
  return lang;
}

/// The catalogue string for `key`, with `{name}` placeholders filled from `params`.
export function t(key: string, params: Record<string, string | number> = {}): string {
  const text = CATALOGUES[lang][key] ?? CATALOGUES.ru[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name: string) => (name in params ? String(params[name]) : `{${name}}`));
}

/// A code from the server (`status.confirmed`, `category.open_manhole`): its catalogue
/// string when there is one, else `fallback` (a name the site configured), else the code.
export function code(prefix: string, value: string | null | undefined, fallback?: string | null): string {
  if (!value) return "—";
  const key = `${prefix}.${value}`;
  if (key in CATALOGUES[lang]) return CATALOGUES[lang][key];
  return fallback || value;
}

export function locale(): string {
  return LOCALES[lang];
}

export function fmtDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "short", timeStyle: "short" }).format(new Date(iso));
}

export function fmtNumber(n: number, digits = 0): string {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n);
}

export function fmtPercent(fraction: number): string {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(fraction);
}

function unit(value: number, name: "day" | "hour" | "minute" | "second"): string {
  return new Intl.NumberFormat(locale(), { style: "unit", unit: name, unitDisplay: "short" }).format(value);
}

/// A duration in minutes as "2 h 5 min" in the user's language (sign dropped).
export function fmtDuration(minutes: number): string {
  const m = Math.abs(Math.round(minutes));
  if (m >= 2880) return unit(Math.floor(m / 1440), "day") + " " + unit(Math.floor((m % 1440) / 60), "hour");
  if (m >= 60) return unit(Math.floor(m / 60), "hour") + " " + unit(m % 60, "minute");
  return unit(m, "minute");
}

export function fmtSeconds(seconds: number): string {
  return seconds < 60 ? unit(Math.round(seconds), "second") : fmtDuration(seconds / 60);
}

/// Translates every `[data-i18n]` element under `root` (static markup).
export function translate(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n ?? "");
  });
}

/// Every catalogue, for the no-untranslated-string check of the end-to-end test.
export function catalogues(): Record<Lang, Record<string, string>> {
  return CATALOGUES;
}
