// Schema-driven completion for YAML keys and values, built on
// codemirror-json-schema's JSONCompletion, with two gaps filled:
//
// 1. A key being typed under a nested mapping ("trigger:\n  sch") is, to a
//    YAML parser, a plain scalar continuing trigger's value, not a key, so the
//    library offers nothing there. Completion therefore runs on a copy of the
//    document with ":" added after the word, which makes it a key.
// 2. On a blank line (Ctrl-Space before typing anything) there is no key node
//    at all. The copy gets an empty quoted key `"":` with the cursor between
//    the quotes: the library then lists every key allowed at that place. Its
//    answer would quote the key (it copies the quoting style of the word
//    being typed); keys are inserted unquoted instead.
//
// The copy differs from the document only after the cursor, so positions up
// to the cursor are the same in both, and the answer applies to the document.
//
// The class also keeps its preprocessed schema between calls: the library's
// check for "schema changed" never records the schema it processed, so each
// keystroke would otherwise copy the whole (~230 KB) schema twice.

import { CompletionContext } from "@codemirror/autocomplete";
import { JSONCompletion, getJSONSchema } from "codemirror-json-schema";

class PlaybookCompletion extends JSONCompletion {
  constructor() {
    super({ mode: "yaml" });
    this.unquoteKeys = false;
  }

  doComplete(ctx) {
    const result = super.doComplete(ctx);
    this.originalSchema = getJSONSchema(ctx.state);
    return result;
  }

  getInsertTextForPropertyName(key, rawWord) {
    return this.unquoteKeys ? key : super.getInsertTextForPropertyName(key, rawWord);
  }
}

// A key position: start of a line, or just after a sequence dash ("- ").
const BLANK_KEY = /^\s*(-\s+)?$/;
const PARTIAL_KEY = /^\s*(-\s+)?[A-Za-z_][\w-]*$/;

// Returns a CompletionSource. Does nothing until the schema has arrived.
export function playbookCompletionSource() {
  const completion = new PlaybookCompletion();

  function run(ctx, insert, offset, unquote) {
    const { state, pos } = ctx;
    const copy = state.update({ changes: { from: pos, insert } }).state;
    const copyCtx = new CompletionContext(copy, pos + offset, ctx.explicit);
    completion.unquoteKeys = unquote;
    let result;
    try {
      result = completion.doComplete(copyCtx);
    } finally {
      completion.unquoteKeys = false;
    }
    if (!result || result.options.length === 0) return null;
    return { ...result, from: Math.min(result.from, pos), to: Math.min(result.to ?? pos, pos) };
  }

  return (ctx) => {
    if (!getJSONSchema(ctx.state)) return null;
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    const after = line.text.slice(ctx.pos - line.from);
    if (!after.trim()) {
      if (BLANK_KEY.test(before)) return ctx.explicit ? run(ctx, '"":', 1, true) : null;
      if (PARTIAL_KEY.test(before)) return run(ctx, ":", 0, false);
    }
    const result = completion.doComplete(ctx);
    return result && result.options.length ? result : null;
  };
}
