// The HTTP API: JSON in and out, the session cookie, and the CSRF token every state-changing
// request carries (X-CSRF-Token).
let csrf = "";

export function setCsrf(token: string): void {
  csrf = token;
}

export class HttpError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function check(response: Response): Promise<Response> {
  if (response.ok) return response;
  let message = String(response.status);
  try {
    const body = await response.json();
    message = typeof body.error === "string" ? body.error : body.error?.message ?? message;
  } catch {
    /* not JSON: keep the status */
  }
  throw new HttpError(response.status, message);
}

export async function get<T>(path: string): Promise<T> {
  const response = await check(await fetch(path, { credentials: "same-origin" }));
  return (await response.json()) as T;
}

/// A GET whose answer carries its total in `X-Total-Count` (paged lists).
export async function getPage<T>(path: string): Promise<{ items: T[]; total: number }> {
  const response = await check(await fetch(path, { credentials: "same-origin" }));
  const items = (await response.json()) as T[];
  const total = Number(response.headers.get("x-total-count") ?? items.length);
  return { items, total };
}

export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  const response = await check(
    await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }),
  );
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}
