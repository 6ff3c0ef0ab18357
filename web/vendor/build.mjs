// Copies the pinned packages' browser files into the repository, with their licences, and writes the manifest.
//
//   cd web/vendor && npm ci --ignore-scripts && node build.mjs      (or: make vendor)
//
// FILES is the one table of what is vendored: which package file goes where. The outputs are committed, so the
// portal and CI never run npm. MODULES are ES modules (CodeMirror 6 and what it imports), one directory per
// package under static/vendor/codemirror/: the only change made to them is that each bare import specifier
// ('@codemirror/state') becomes the absolute path of that package's copy, so the browser loads them without
// a bundler or an import map (an import map is an inline script, which the CSP forbids). VENDORED.json lists every output file with its package, version, licence and
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
const CM = `${STATIC}/codemirror`;
const MODULES = {
  "@codemirror/autocomplete": "dist/index.js",
  "@codemirror/commands": "dist/index.js",
  "@codemirror/lang-sql": "dist/index.js",
  "@codemirror/language": "dist/index.js",
  "@codemirror/state": "dist/index.js",
  "@codemirror/streamparser": "dist/index.js",
  "@codemirror/view": "dist/index.js",
  "@lezer/common": "dist/index.js",
  "@lezer/highlight": "dist/index.js",
  "@lezer/lr": "dist/index.js",
  "@marijn/find-cluster-break": "src/index.js",
  crelt: "index.js",
  "style-mod": "src/style-mod.js",
  "w3c-keyname": "index.js",
};
for (const [pkg, from] of Object.entries(MODULES)) {
  FILES.push({ package: pkg, from, to: `${CM}/${pkg}/index.js`, module: true });
}
// import/export statements at the start of a line: `import { x } from 'pkg';`, `export { y } from "pkg";`
const IMPORT = /^((?:import|export)\b[^;'"]*?\bfrom\s*|import\s*)(['"])([^'"]+)\2/gm;
function rewriteImports(text, file) {
  return text.replace(IMPORT, (whole, statement, quote, specifier) => {
    if (specifier.startsWith(".") || specifier.startsWith("/")) return whole;
    if (!(specifier in MODULES)) throw new Error(`${file}: imports ${specifier}, which is not vendored`);
    return `${statement}${quote}/${CM.replace("src/renkei/web/", "")}/${specifier}/index.js${quote}`;
  });
}
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
  if (file.module) {
    writeFileSync(target, rewriteImports(readFileSync(join(packageDir, file.from), "utf8"), file.from));
  } else {
    copyFileSync(join(packageDir, file.from), target);
  }
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
