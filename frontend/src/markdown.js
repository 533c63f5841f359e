// Stand-in for codemirror-json-schema's dist/utils/markdown.js (swapped in by
// build.mjs). The original also starts the shiki syntax highlighter at import
// time, to colour code blocks inside schema descriptions: about 300 KB of
// grammars and themes that tree-shaking cannot drop (the start-up is a side
// effect), for a feature the playbook schema does not use. Descriptions are
// still rendered as markdown, with markdown-it's defaults (raw HTML escaped).
import md from "markdown-it";

const renderer = md({ linkify: true, typographer: true });

export function renderMarkdown(markdown, inline = true) {
  if (!inline) return renderer.render(markdown);
  return renderer.renderInline(markdown);
}
