// Builds the console's browser files into engine/console/static/vendor/:
//
//   editor.js      src/editor.js and its npm dependencies, one minified IIFE
//                  exposing the global `CareEditor`
//   htmx.min.js    copied unchanged from the htmx.org package
//   LICENSES.txt   the licence text of every npm package in those two files
//   manifest.json  bytes, gzip bytes and sha256 of each file, and the package
//                  versions; a Python test checks the committed files against
//                  it, so it is deterministic (sorted keys, no timestamps)
//
// Run `node build.mjs` after `npm ci`, from any directory (build.sh does both).

import { build, version as esbuildVersion } from "esbuild";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(here, "..", "engine", "console", "static", "vendor");
const nodeModules = join(here, "node_modules");

// Both files are loaded on every console page: keep them small.
const GZIP_BUDGET = 500 * 1000;

// Two build-time changes to codemirror-json-schema 0.8.1 (its version is
// pinned; a change of its files fails the build here instead of silently
// dropping a fix):
//
// * its markdown helper starts the shiki highlighter at import time (see
//   src/markdown.js): a markdown-it-only version is swapped in. Imports in the
//   stand-in resolve from the original file's folder, so it uses the
//   markdown-it that codemirror-json-schema depends on;
// * completion and hover build a json-schema-library Draft from the whole
//   schema on every call (about 45 ms each for the playbook schema, twice per
//   keystroke). The drafts are cached per schema object instead; the library's
//   own comment there suggests the same.
const DRAFT_CACHE = `
const __careDrafts = new WeakMap();
function __careDraft(Draft, schema) {
  if (schema === null || typeof schema !== "object") return new Draft(schema);
  let byClass = __careDrafts.get(schema);
  if (!byClass) __careDrafts.set(schema, (byClass = new Map()));
  if (!byClass.has(Draft)) byClass.set(Draft, new Draft(schema));
  return byClass.get(Draft);
}
`;
const patchJsonSchema = {
  name: "patch-codemirror-json-schema",
  setup(b) {
    b.onLoad({ filter: /codemirror-json-schema[\\/]dist[\\/]utils[\\/]markdown\.js$/ }, (args) => ({
      contents: readFileSync(join(here, "src", "markdown.js"), "utf8"),
      loader: "js",
      resolveDir: dirname(args.path),
    }));
    b.onLoad({ filter: /codemirror-json-schema[\\/]dist[\\/]features[\\/](completion|hover)\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      const uses = source.match(/new Draft0[47]\(/g) || [];
      const expected = args.path.endsWith("completion.js") ? 3 : 1; // one of the three is a comment
      if (uses.length !== expected) {
        throw new Error(`${args.path}: expected ${expected} "new Draft" calls, found ${uses.length}`);
      }
      return {
        contents: source.replace(/new (Draft0[47])\(/g, "__careDraft($1, ") + DRAFT_CACHE,
        loader: "js",
        resolveDir: dirname(args.path),
      };
    });
  },
};

// Package id for a package.json whose "license" field is missing but whose
// LICENSE file states it (checked by reading the file).
const LICENSE_ID_OVERRIDES = { "valid-url": "MIT" };

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

// "node_modules/@scope/name/dist/x.js" -> "node_modules/@scope/name" (the
// innermost node_modules, so nested copies are told apart).
function packageRoot(inputPath) {
  const m = inputPath.replace(/\\/g, "/").match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  return m ? m[1] : null;
}

function readPackage(root) {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const files = readdirSync(root)
    .filter((f) => /^(licen[cs]e|copying)([.-].*)?$/i.test(f))
    .sort();
  if (files.length === 0) {
    throw new Error(`${pkg.name}@${pkg.version}: no LICENSE file; add its licence text by hand`);
  }
  const text = files
    .map((f) => readFileSync(join(root, f), "utf8").replace(/\r\n?/g, "\n").trim())
    .join("\n\n");
  const license =
    (typeof pkg.license === "string" && pkg.license) ||
    (Array.isArray(pkg.licenses) && pkg.licenses[0] && pkg.licenses[0].type) ||
    LICENSE_ID_OVERRIDES[pkg.name];
  if (!license) throw new Error(`${pkg.name}@${pkg.version}: no licence id`);
  return { name: pkg.name, version: pkg.version, license, text };
}

function describe(buf) {
  return {
    bytes: buf.length,
    gzip_bytes: gzipSync(buf, { level: 9 }).length,
    sha256: createHash("sha256").update(buf).digest("hex"),
  };
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  const editorOut = join(outDir, "editor.js");

  const result = await build({
    absWorkingDir: here,
    entryPoints: ["src/editor.js"],
    outfile: editorOut,
    bundle: true,
    minify: true,
    format: "iife",
    globalName: "CareEditor",
    target: "es2020",
    platform: "browser",
    legalComments: "none", // the texts go to LICENSES.txt instead
    banner: { js: "/* CareEditor: the playbook console's editor. Licences: LICENSES.txt */" },
    metafile: true,
    write: false,
    logLevel: "warning",
    plugins: [patchJsonSchema],
  });
  const editorJs = result.outputFiles.find((f) => f.path === editorOut);
  if (!editorJs) throw new Error("esbuild wrote no editor.js");

  // The packages that really end up in the bundle: every input file that
  // contributes bytes to the output, mapped to its package folder.
  const outputMeta = result.metafile.outputs[relative(here, editorOut).replace(/\\/g, "/")];
  const roots = new Set();
  for (const [input, info] of Object.entries(outputMeta.inputs)) {
    if (info.bytesInOutput === 0) continue;
    const root = packageRoot(input);
    if (root) roots.add(resolve(here, root));
    else if (!input.startsWith("src/")) throw new Error(`input outside src/ and node_modules: ${input}`);
  }
  const bundled = [...roots].map(readPackage);

  const htmxRoot = join(nodeModules, "htmx.org");
  const htmx = readPackage(htmxRoot);
  const htmxJs = readFileSync(join(htmxRoot, "dist", "htmx.min.js"));

  const all = [...bundled, htmx].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1,
  );
  const licenses = [
    "Third-party software in this folder",
    "",
    "editor.js bundles the npm packages below (except htmx.org); htmx.min.js is",
    "htmx.org's own build, unchanged. Each package's licence text follows.",
    "",
    ...all.flatMap((p) => [
      "=".repeat(78),
      `${p.name} ${p.version}`,
      `License: ${p.license}`,
      "-".repeat(78),
      p.text,
      "",
    ]),
  ].join("\n");
  const licensesTxt = Buffer.from(licenses, "utf8");

  const files = {
    "editor.js": Buffer.from(editorJs.contents),
    "htmx.min.js": htmxJs,
    "LICENSES.txt": licensesTxt,
  };
  for (const [name, buf] of Object.entries(files)) writeFileSync(join(outDir, name), buf);

  const manifest = sortKeys({
    files: Object.fromEntries(Object.entries(files).map(([n, buf]) => [n, describe(buf)])),
    packages: Object.fromEntries(all.map((p) => [p.name, p.version])),
    built_with: { esbuild: esbuildVersion },
  });
  writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

  const served = ["editor.js", "htmx.min.js"].map((n) => manifest.files[n]);
  const gz = served.reduce((s, f) => s + f.gzip_bytes, 0);
  for (const n of Object.keys(files)) {
    const f = manifest.files[n];
    console.log(`${n.padEnd(14)} ${String(f.bytes).padStart(9)} bytes  ${String(f.gzip_bytes).padStart(8)} gzip`);
  }
  console.log(`${all.length} packages; editor.js + htmx.min.js: ${gz} bytes gzip (budget ${GZIP_BUDGET})`);
  if (gz > GZIP_BUDGET) throw new Error("over the gzip budget");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
