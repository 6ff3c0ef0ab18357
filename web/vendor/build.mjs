// Copies the pinned packages' browser files into the repository, with their licences, and writes the manifest.
//
//   cd web/vendor && npm ci --ignore-scripts && node build.mjs      (or: make vendor)
//
// FILES is the one table of what is vendored: which package file goes where. The outputs are committed, so the
// portal and CI never run npm. VENDORED.json lists every output file with its package, version, licence and
// SHA-256; tests/unit/test_vendored.py holds the files to it.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const STATIC = "src/renkei/web/static/vendor"; // served by the portal under /static/vendor/
const TESTS = "tests/browser/vendor"; // used by the browser tests only, never served

const FILES = [
  { package: "htmx.org", from: "dist/htmx.min.js", to: `${STATIC}/htmx/htmx.min.js` },
  { package: "axe-core", from: "axe.min.js", to: `${TESTS}/axe-core/axe.min.js` },
];
const LICENCE_FILES = ["LICENSE", "LICENSE-3RD-PARTY.txt"];

function sha256(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

const targets = new Set(FILES.map((f) => dirname(f.to)));
for (const dir of targets) rmSync(join(root, dir), { recursive: true, force: true });

const entries = [];
function record(pkg, meta, to) {
  entries.push({ file: to, package: pkg, version: meta.version, license: meta.license, sha256: sha256(join(root, to)) });
}
const licenced = new Set();
for (const file of FILES) {
  const packageDir = join(here, "node_modules", file.package);
  const meta = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));
  const target = join(root, file.to);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(packageDir, file.from), target);
  record(file.package, meta, file.to);
  const dir = dirname(file.to);
  if (licenced.has(dir)) continue;
  licenced.add(dir);
  for (const name of LICENCE_FILES) {
    if (!existsSync(join(packageDir, name))) continue;
    copyFileSync(join(packageDir, name), join(root, dir, name));
    record(file.package, meta, `${dir}/${name}`);
  }
}
entries.sort((a, b) => a.file.localeCompare(b.file));
const manifest = join(root, STATIC, "VENDORED.json");
writeFileSync(manifest, JSON.stringify({ generated_by: "web/vendor/build.mjs", files: entries }, null, 2) + "\n");
console.log(`vendored ${entries.length} files; manifest ${relative(root, manifest)}`);
