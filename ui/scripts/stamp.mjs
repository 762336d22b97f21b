// Writes dist/source.sha256: SHA-256 over every UI source file (relative path, NUL, content,
// NUL; files sorted by relative path). src/web/assets.rs recomputes it in a test, so a source
// change without a rebuild of the committed dist/ fails CI.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const ui = new URL("..", import.meta.url).pathname;
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else files.push(path);
  }
}
walk(join(ui, "src"));
for (const top of ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"]) {
  files.push(join(ui, top));
}
const rels = files.map((f) => [relative(ui, f).split("\\").join("/"), f]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const hash = createHash("sha256");
for (const [rel, path] of rels) {
  hash.update(rel);
  hash.update(Buffer.from([0]));
  hash.update(readFileSync(path));
  hash.update(Buffer.from([0]));
}
writeFileSync(join(ui, "dist", "source.sha256"), hash.digest("hex") + "\n");
