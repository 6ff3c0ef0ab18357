// The analysis workspace's enhancements (loaded as a module; the page works without them):
// - a form with data-progress shows its status line while the server computes (集計しています…);
// - the SQL <textarea> becomes a CodeMirror 6 editor with SQL highlighting and completion of the granted
//   views and their columns (from its data-schema attribute); the textarea stays the submitted field.

for (const form of document.querySelectorAll("form[data-progress]")) {
  form.addEventListener("submit", () => {
    const status = document.getElementById(form.dataset.progress);
    if (status) status.hidden = false;
    for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-disabled", "true");
    form.setAttribute("aria-busy", "true");
  });
}

const textarea = document.querySelector("textarea.sql-editor");
if (textarea) {
  import("/static/sql_editor.js")
    .then((cm) => cm.enhance(textarea, JSON.parse(textarea.dataset.schema || "{}")))
    .catch(() => {}); // no editor: the plain textarea still works
}
