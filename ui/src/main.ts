// The shell: sign-in, the header (screens allowed to the role, live indicator, language,
// sign-out) and hash routing between screens. Each screen mounts into #screen and returns
// its cleanup.
import "./style.css";

import { HttpError, get, post, setCsrf } from "./api";
import { clear, h } from "./dom";
import { LANGS, currentLang, setLang, t } from "./i18n";
import { onLiveStatus, startLive, stopLive } from "./live";
import type { Me, Site } from "./types";
import { mountAppeal } from "./screens/appeal";
import { mountBoard } from "./screens/board";
import { mountCameras } from "./screens/cameras";
import { mountCityMap } from "./screens/citymap";
import { mountQuality } from "./screens/quality";
import { mountReview } from "./screens/review";

export interface Ctx {
  me: Me;
  site: Site;
  root: HTMLElement;
  has: (...roles: string[]) => boolean;
}
type Mount = (ctx: Ctx, arg: string) => () => void;

interface Screen {
  id: string;
  label: string;
  roles: string[];
  mount: Mount;
  nav: boolean;
}

const SCREENS: Screen[] = [
  { id: "review", label: "nav.review", roles: ["inspector", "supervisor"], mount: mountReview, nav: true },
  { id: "board", label: "nav.board", roles: ["inspector", "dispatcher", "supervisor", "qa", "admin"], mount: mountBoard, nav: true },
  { id: "map", label: "nav.map", roles: ["inspector", "dispatcher", "supervisor", "qa", "admin"], mount: mountCityMap, nav: true },
  { id: "cameras", label: "nav.cameras", roles: ["inspector", "dispatcher", "supervisor", "qa", "admin"], mount: mountCameras, nav: true },
  { id: "quality", label: "nav.quality", roles: ["supervisor", "qa"], mount: mountQuality, nav: true },
  { id: "appeal", label: "nav.board", roles: ["inspector", "dispatcher", "supervisor", "qa", "admin"], mount: mountAppeal, nav: false },
];

const root = document.getElementById("root") as HTMLElement;
let cleanup: () => void = () => {};
let ctx: Ctx | null = null;

function allowed(me: Me, screen: Screen): boolean {
  return screen.roles.some((r) => me.roles.includes(r));
}

function route(): void {
  if (!ctx) return;
  const [id, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const screen = SCREENS.find((s) => s.id === id && allowed(ctx!.me, s));
  if (!screen) {
    const first = SCREENS.find((s) => s.nav && allowed(ctx!.me, s));
    if (first) location.replace("#/" + first.id);
    return;
  }
  cleanup();
  document.querySelectorAll<HTMLElement>("nav a").forEach((a) => a.classList.toggle("active", a.dataset.screen === screen.id));
  const main = document.getElementById("screen") as HTMLElement;
  clear(main);
  document.body.dataset.screen = screen.id;
  cleanup = screen.mount({ ...ctx, root: main }, decodeURIComponent(rest.join("/")));
}

function header(me: Me, site: Site): HTMLElement {
  const live = h("span", { id: "live", class: "live off", title: t("live.off") }, t("live.off"));
  onLiveStatus((on) => {
    live.className = on ? "live on" : "live off";
    live.textContent = on ? t("live.on") : t("live.off");
  });
  const language = h(
    "select",
    {
      id: "language",
      "aria-label": t("header.language"),
      onchange: async (ev: Event) => {
        const value = (ev.target as HTMLSelectElement).value;
        setLang(value);
        localStorage.setItem("sitcenter.lang", value);
        me.language = value;
        await post("/api/auth/language", { language: value }).catch(() => undefined);
        render(me, site);
      },
    },
    LANGS.map((l) => h("option", { value: l, selected: l === currentLang() }, t("lang." + l))),
  );
  return h(
    "header",
    {},
    h("h1", { id: "title" }, site.city ? t("header.title_city", { site: site.name, city: site.city }) : t("header.title", { site: site.name })),
    h(
      "nav",
      {},
      SCREENS.filter((s) => s.nav && allowed(me, s)).map((s) => h("a", { href: "#/" + s.id, "data-screen": s.id }, t(s.label))),
    ),
    live,
    language,
    h("span", { id: "who" }, t("header.who", { user: me.user, roles: me.roles.map((r) => t("role." + r)).join(", ") })),
    h("button", { id: "logout", type: "button", onclick: () => signOut() }, t("header.sign_out")),
  );
}

function render(me: Me, site: Site): void {
  document.title = t("header.title", { site: site.name });
  clear(root, header(me, site), h("main", { id: "screen" }));
  ctx = { me, site, root, has: (...roles: string[]) => roles.some((r) => me.roles.includes(r)) };
  route();
}

async function signOut(): Promise<void> {
  cleanup();
  cleanup = () => {};
  // Give review claims back at once (the server also voids claims of a closed session).
  if (ctx?.has("inspector", "supervisor")) await post("/api/review/release").catch(() => undefined);
  await post("/api/auth/logout").catch(() => undefined);
  stopLive();
  ctx = null;
  showLogin();
}

function showLogin(): void {
  document.title = t("login.title");
  const error = h("p", { id: "login-error", role: "alert" });
  const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true });
  const password = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    {
      id: "login",
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        try {
          await post("/api/auth/login", { user: user.value, password: password.value });
          await start();
        } catch (e) {
          error.textContent = e instanceof HttpError && e.status === 401 ? t("login.bad_credentials") : t("login.failed", { error: String((e as Error).message) });
        }
      },
    },
    h("h2", {}, t("login.title")),
    h("label", {}, t("login.user"), user),
    h("label", {}, t("login.password"), password),
    h("button", { type: "submit" }, t("login.submit")),
    error,
  );
  clear(root, form);
  user.focus();
}

async function start(): Promise<void> {
  setLang(localStorage.getItem("sitcenter.lang") ?? "ru");
  let me: Me;
  try {
    me = await get<Me>("/api/auth/me");
  } catch {
    showLogin();
    return;
  }
  setLang(me.language || currentLang());
  localStorage.setItem("sitcenter.lang", currentLang());
  setCsrf(me.csrf);
  const site = await get<Site>("/api/site");
  startLive();
  render(me, site);
  document.body.dataset.loaded = "1";
}

window.addEventListener("hashchange", route);
start();
