// Editor glue for the playbook console.
//
// Bundled into one IIFE that exposes the global `CareEditor` (see build.mjs).
// The page is server-rendered; this file only mounts CodeMirror into a given
// element and wires it to the server:
//
//   * the server is the only judge of validity: every diagnostic shown comes
//     from POST validateUrl. The JSON Schema is used for completion and hover
//     only, never to lint, so the browser can never disagree with the server;
//   * a plain <textarea> is kept equal to the document, so ordinary forms and
//     htmx (hx-include) submit the text without knowing about the editor.

import { basicSetup } from "codemirror";
import { EditorView, keymap, hoverTooltip } from "@codemirror/view";
import { EditorState, EditorSelection } from "@codemirror/state";
import { indentUnit, indentService } from "@codemirror/language";
import { indentMore, indentLess } from "@codemirror/commands";
import { linter, lintGutter, setDiagnostics, forEachDiagnostic } from "@codemirror/lint";
import { yaml, yamlLanguage } from "@codemirror/lang-yaml";
// Only completion and hover come from codemirror-json-schema, never its
// schema linter (see above). The schema lives in a state field of that
// package, filled in once the schema has been fetched.
import { yamlSchemaHover } from "codemirror-json-schema/yaml";
import { stateExtensions, updateSchema, getJSONSchema } from "codemirror-json-schema";
import { playbookCompletionSource } from "./schema-completion.js";

const STATUS_CHECKING = "检查中…";
const STATUS_NO_ERRORS = "无错误 no errors";
const STATUS_CANNOT_CHECK = "无法检查 cannot check: ";

// ---------------------------------------------------------------------------
// Look and feel

// The parent element decides the size (it has a CSS height); the editor fills
// it and scrolls inside. Tooltips are capped to the viewport and wrap, so a
// long error message stays readable on a 390 px wide phone.
const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "14px", backgroundColor: "#fff" },
  "&.cm-focused": { outline: "2px solid #7aa7e0" },
  ".cm-scroller": {
    overflow: "auto",
    fontFamily:
      'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", ' +
      '"Noto Sans Mono CJK SC", "WenQuanYi Zen Hei Mono", monospace',
    lineHeight: "1.5",
  },
  ".cm-gutters": { backgroundColor: "#f6f7f9", borderRight: "1px solid #dde1e6" },
  ".cm-tooltip": {
    maxWidth: "min(40em, calc(100vw - 16px))",
    boxSizing: "border-box",
  },
  // Diagnostics are plain text with a line break before the hint; hover and
  // completion info are HTML (rendered markdown), so only wrapping is set.
  ".cm-diagnostic": { whiteSpace: "pre-wrap", padding: "4px 8px", fontSize: "13px" },
  ".cm-diagnostic, .cm-tooltip-hover, .cm-completionInfo": { overflowWrap: "anywhere" },
  ".cm-completionInfo": { maxWidth: "min(30em, calc(100vw - 16px))" },
  // The message already starts with the code; the source line repeats it.
  ".cm-diagnosticSource": { display: "none" },
  ".cm-tooltip-hover": { padding: "4px 8px", fontSize: "13px" },
  // A tinted background besides the default wavy underline, so a marked
  // range is easy to spot on a small screen.
  ".cm-lintRange-error": {
    backgroundColor: "rgba(220, 38, 38, 0.12)",
  },
  ".cm-lintRange-warning": {
    backgroundColor: "rgba(217, 119, 6, 0.12)",
  },
});

// YAML forbids tab characters for indentation, so Tab must insert spaces.
// With no selection, Tab inserts spaces up to the next multiple of two at the
// cursor (what people expect from a text field); with a selection it indents
// the selected lines. Shift-Tab dedents. Escape then Tab still leaves the
// editor (CodeMirror's built-in tab-focus escape), so keyboard users are not
// trapped.
function insertSoftTab(view) {
  const { state } = view;
  if (state.readOnly) return false;
  if (state.selection.ranges.some((r) => !r.empty)) return indentMore(view);
  view.dispatch(
    state.changeByRange((range) => {
      const line = state.doc.lineAt(range.head);
      const col = range.head - line.from;
      const spaces = " ".repeat(2 - (col % 2));
      return {
        changes: { from: range.head, insert: spaces },
        range: EditorSelection.cursor(range.head + spaces.length),
      };
    }),
    { scrollIntoView: true, userEvent: "input" },
  );
  return true;
}

// Enter after a key with no value yet ("trigger:", "  - sms:", "text: |")
// starts the next line one level deeper, where that key's content goes. The
// YAML language's own indentation keeps the previous indent there. Only new
// lines are affected; re-indenting existing lines is left to the language.
const KEY_OPENS_BLOCK = /^(\s*)(-\s+)?[^\s#][^#]*?:\s*([|>][-+0-9]*)?\s*(#.*)?$/;

const indentAfterKey = indentService.of((cx, pos) => {
  if (cx.options.simulateBreak !== pos) return undefined;
  const m = KEY_OPENS_BLOCK.exec(cx.lineAt(pos, -1).text);
  if (!m) return undefined;
  return m[1].length + (m[2] ? m[2].length : 0) + cx.unit;
});

const softTabs = [
  indentUnit.of("  "),
  EditorState.tabSize.of(2),
  keymap.of([
    { key: "Tab", run: insertSoftTab },
    { key: "Shift-Tab", run: indentLess },
  ]),
];

// ---------------------------------------------------------------------------
// Server validation

// Turn the server's 1-based (line, column, width) into document offsets.
// line null/0 means "the whole document": shown on line 1. The range is
// clamped to the line, and is at least one character wide where the line has
// one.
function toDiagnostic(doc, d) {
  const lineNo = Math.min(Math.max(Number(d.line) || 1, 1), doc.lines);
  const line = doc.line(lineNo);
  const col = Math.max(Number(d.column) || 1, 1);
  const from = Math.min(line.from + col - 1, line.to);
  const width = Math.max(Number(d.width) || 1, 1);
  const to = Math.min(from + width, line.to);
  const severity = ["error", "warning", "info", "hint"].includes(d.severity) ? d.severity : "error";
  const code = d.code ? String(d.code) : "";
  let message = code ? `${code} ${d.message ?? ""}` : String(d.message ?? "");
  if (d.hint) message += `\n${d.hint}`;
  return { from, to, severity, message, source: code || undefined };
}

// The diagnostics currently shown, at their present positions (CodeMirror maps
// them through edits). Used to keep the old marks when a check fails.
function currentDiagnostics(state) {
  const out = [];
  forEachDiagnostic(state, (d, from, to) => out.push({ ...d, from, to }));
  return out;
}

function setStatus(el, text) {
  if (el) el.textContent = text;
}

// One validator per editor. It owns the in-flight request: starting a new
// check aborts the previous one, so a slow answer for old text can never
// overwrite the answer for the new text.
function makeValidator(parent, opts) {
  const { validateUrl, csrfToken, statusElement, onValidated, extraBody } = opts;
  let inflight = null;
  let count = 0;

  // Resolves to {response, diagnostics} on success, or null when the check
  // was superseded or failed (in which case the old diagnostics stay).
  async function check(view) {
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    const doc = view.state.doc;
    setStatus(statusElement, STATUS_CHECKING);
    let response;
    try {
      const res = await fetch(validateUrl, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-CSRF-Token": csrfToken ?? "",
        },
        body: JSON.stringify({ text: doc.toString(), ...(extraBody || {}) }),
        signal: controller.signal,
        credentials: "same-origin",
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      try {
        response = await res.json();
      } catch {
        throw new Error("invalid response");
      }
      if (!response || !Array.isArray(response.diagnostics)) throw new Error("invalid response");
    } catch (err) {
      if (controller.signal.aborted) return null; // superseded: the newer check reports
      if (inflight === controller) inflight = null;
      setStatus(statusElement, STATUS_CANNOT_CHECK + (err && err.message ? err.message : String(err)));
      return null;
    }
    if (inflight !== controller) return null;
    inflight = null;

    const diagnostics = response.diagnostics.map((d) => toDiagnostic(doc, d));
    const n = response.diagnostics.length;
    setStatus(
      statusElement,
      response.summary ? String(response.summary) : n === 0 ? STATUS_NO_ERRORS : `${n} 个问题 problem(s)`,
    );
    // Hooks for end-to-end tests: the raw diagnostics, and a counter that
    // changes on every fresh result so a test can wait for it.
    parent.dataset.diagnostics = JSON.stringify(response.diagnostics);
    parent.dataset.validations = String(++count);
    if (onValidated) {
      try {
        onValidated(response);
      } catch (e) {
        console.error(e);
      }
    }
    return { response, diagnostics, doc };
  }

  // The lint extension calls this `delay` ms after the last edit (and once at
  // start). CodeMirror drops the result if the document changed meanwhile.
  const lintExtension = linter(
    async (view) => {
      const result = await check(view);
      return result ? result.diagnostics : currentDiagnostics(view.state);
    },
    { delay: opts.debounceMs ?? 400 },
  );

  // Check right now, bypassing the debounce. Resolves to the server's
  // response, or null if the check failed or was superseded.
  async function validateNow(view) {
    const result = await check(view);
    if (!result) return null;
    if (view.state.doc === result.doc) view.dispatch(setDiagnostics(view.state, result.diagnostics));
    return result.response;
  }

  return [lintExtension, validateNow];
}

// ---------------------------------------------------------------------------
// Schema: fetched once per URL and shared by all editors on the page.

const schemaCache = new Map();

function loadSchema(url) {
  if (!schemaCache.has(url)) {
    const p = fetch(url, { credentials: "same-origin" }).then((res) => {
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return res.json();
    });
    // A failed load may be retried by the next editor mounted.
    p.catch(() => schemaCache.delete(url));
    schemaCache.set(url, p);
  }
  return schemaCache.get(url);
}

// Completion and hover do nothing until the schema has arrived; the editor
// is fully usable (typing, server lint) before that or without it.
function schemaFeatures() {
  const hover = yamlSchemaHover();
  return [
    stateExtensions(null),
    yamlLanguage.data.of({ autocomplete: playbookCompletionSource() }),
    hoverTooltip((view, pos, side) => (getJSONSchema(view.state) ? hover(view, pos, side) : null)),
  ];
}

// ---------------------------------------------------------------------------
// Mounting

function textareaSync(textarea, onChange) {
  return EditorView.updateListener.of((update) => {
    if (!update.docChanged) return;
    const text = update.state.doc.toString();
    if (textarea) textarea.value = text;
    if (onChange) onChange(text);
  });
}

function mount(parent, opts, extraExtensions) {
  if (!parent) throw new Error("CareEditor: no parent element");
  const textarea = opts.textarea || null;
  const text = opts.text ?? (textarea ? textarea.value : "");
  if (textarea) textarea.value = text;

  let validateNow = null;
  const extensions = [basicSetup, EditorView.lineWrapping, softTabs, theme, ...extraExtensions];
  if (opts.validateUrl) {
    const [lintExtension, run] = makeValidator(parent, opts);
    extensions.push(lintExtension, lintGutter());
    validateNow = run;
  }
  extensions.push(textareaSync(textarea, opts.onChange));

  const view = new EditorView({
    parent,
    state: EditorState.create({ doc: text, extensions }),
  });

  return {
    view,
    getText: () => view.state.doc.toString(),
    setText(newText) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: String(newText) } });
    },
    validateNow: () => (validateNow ? validateNow(view) : Promise.resolve(null)),
    destroy: () => view.destroy(),
  };
}

// Mount a YAML playbook editor. See frontend/README.md for the options.
export function mountYaml(parent, opts = {}) {
  const ed = mount(parent, opts, [yaml(), indentAfterKey, schemaFeatures()]);
  if (opts.schemaUrl) {
    loadSchema(opts.schemaUrl).then(
      (schema) => {
        if (ed.view.dom.isConnected || ed.view.dom.parentNode) updateSchema(ed.view, schema);
      },
      (err) => console.warn("CareEditor: schema not loaded, no completion:", err),
    );
  }
  return ed;
}

// Mount a plain-text editor (Jinja templates): no language, same textarea
// sync, and server lint when validateUrl is given (body: text + extraBody).
export function mountText(parent, opts = {}) {
  return mount(parent, opts, []);
}
