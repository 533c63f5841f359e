// Page glue: mounts the editors the server's pages ask for. No inline scripts (the CSP
// allows none); every URL and token comes from the page's data attributes.
(function () {
  "use strict";
  function csrf() { return document.body.dataset.csrf || ""; }

  function mountPlaybook() {
    const parent = document.getElementById("editor");
    const textarea = document.getElementById("text");
    if (!parent || !textarea || !window.CareEditor) return;
    window.careEditor = window.CareEditor.mountYaml(parent, {
      text: textarea.value,
      schemaUrl: parent.dataset.schemaUrl,
      validateUrl: parent.dataset.validateUrl,
      csrfToken: csrf(),
      textarea: textarea,
      statusElement: document.getElementById("status"),
    });
  }

  function mountTemplate() {
    const parent = document.getElementById("template-editor");
    const textarea = document.getElementById("text");
    if (!parent || !textarea || !window.CareEditor) return;
    let timer = null;
    window.careEditor = window.CareEditor.mountText(parent, {
      text: textarea.value,
      textarea: textarea,
      onChange: function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          window.htmx.ajax("POST", "/editor/render", {
            source: "#template-form", target: "#rendered",
            values: { name: document.querySelector("#template-form [name=name]").value, text: textarea.value },
            headers: { "X-CSRF-Token": csrf() },
          });
        }, 400);
      },
    });
  }

  document.addEventListener("DOMContentLoaded", function () { mountPlaybook(); mountTemplate(); });
})();

// A refused or failed htmx request (a 403, a lost connection) says so in the card it came
// from, instead of nothing happening.
document.addEventListener("htmx:responseError", function (event) {
  const card = event.target.closest && event.target.closest(".task");
  if (!card) return;
  let note = card.querySelector(".request-error");
  if (!note) {
    note = document.createElement("p");
    note.className = "error request-error";
    note.setAttribute("role", "alert");
    card.appendChild(note);
  }
  const status = event.detail && event.detail.xhr ? event.detail.xhr.status : "";
  note.textContent = "未能完成(" + status + "),请刷新页面后重试。Not done (" + status +
    "): reload the page and try again.";
});

// A WeCom message task: "copy" puts the pre-filled text on the clipboard for the manager to
// paste into WeCom (which sends nothing without their confirmation). Delegated, so cards
// swapped in by htmx work too; where the clipboard API is refused, the text is selected.
document.addEventListener("click", function (event) {
  const button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const done = function () {
    button.textContent = button.dataset.copied || "Copied";
    button.classList.add("copied");
  };
  const select = function () {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try { if (document.execCommand("copy")) done(); } catch (e) { /* left selected */ }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(done, select);
  } else {
    select();
  }
});
