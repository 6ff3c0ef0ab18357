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

// Result tables sort by a column when its heading is pressed (a button, so the keyboard reaches it); 計 rows
// stay last. Suppressed cells (X) sort after every number. Without JavaScript the table is in the hub's order.
function cellValue(cell) {
  const text = cell.dataset.value ?? cell.textContent.trim();
  if (text === "") return null;
  const number = Number(text.replace(/,/g, ""));
  return Number.isNaN(number) ? text : number;
}

function compare(a, b) {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "ja", { numeric: true });
}

for (const table of document.querySelectorAll("table[data-sortable]")) {
  const headings = [...table.tHead.rows[0].cells];
  headings.forEach((heading, column) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = heading.textContent;
    heading.replaceChildren(button);
    button.addEventListener("click", () => {
      const ascending = heading.getAttribute("aria-sort") !== "ascending";
      for (const other of headings) other.removeAttribute("aria-sort");
      heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const body = table.tBodies[0];
      const rows = [...body.rows];
      const inner = rows.filter((row) => !row.classList.contains("total"));
      inner.sort((a, b) => compare(cellValue(a.cells[column]), cellValue(b.cells[column])) * (ascending ? 1 : -1));
      body.append(...inner, ...rows.filter((row) => row.classList.contains("total")));
    });
  });
}
