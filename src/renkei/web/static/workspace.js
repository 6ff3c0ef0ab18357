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
      table.dispatchEvent(new Event("sorted"));
    });
  });
}

// A result table longer than its data-page-size shows one page of rows at a time, with 前の/次の buttons and
// a status line read out by screen readers; sorting starts again at the first page. Without JavaScript every
// row is shown.
function paginate(table) {
  const size = Number(table.dataset.pageSize || 0);
  const body = table.tBodies[0];
  if (!size || body.rows.length <= size) return;
  const nav = document.createElement("nav");
  nav.className = "pager";
  nav.setAttribute("aria-label", table.caption ? table.caption.textContent : "");
  const prev = document.createElement("button");
  const next = document.createElement("button");
  const status = document.createElement("span");
  prev.type = next.type = "button";
  prev.textContent = table.dataset.pagePrev;
  next.textContent = table.dataset.pageNext;
  status.setAttribute("aria-live", "polite");
  nav.append(prev, status, next);
  (table.closest(".table-wrap") || table).after(nav);
  let page = 0;
  const show = () => {
    const rows = [...body.rows];
    const last = Math.ceil(rows.length / size) - 1;
    page = Math.min(Math.max(page, 0), last);
    rows.forEach((row, i) => { row.hidden = i < page * size || i >= (page + 1) * size; });
    prev.disabled = page === 0;
    next.disabled = page === last;
    status.textContent = table.dataset.pageStatus
      .replace("{first}", String(page * size + 1))
      .replace("{last}", String(Math.min((page + 1) * size, rows.length)))
      .replace("{total}", String(rows.length));
  };
  prev.addEventListener("click", () => { page -= 1; show(); });
  next.addEventListener("click", () => { page += 1; show(); });
  table.addEventListener("sorted", () => { page = 0; show(); });
  show();
}

for (const table of document.querySelectorAll("table[data-page-size]")) paginate(table);

// The ward map (区の模式図) is offered only for a table by ward alone: one dimension, a ward column (住所_ward).
// Without JavaScript it is always listed, and the server refuses it, naming the field, for any other table.
const builder = document.querySelector("form.builder");
if (builder) {
  const dims = [...builder.querySelectorAll("select[name^=dim]")];
  const wardmap = builder.querySelector("select[name=chart] option[value=wardmap]");
  const offer = () => {
    const chosen = dims.map((d) => d.value).filter((v) => v !== "");
    const byWard = chosen.length === 1 && chosen[0].startsWith("column:") && chosen[0].endsWith("_ward");
    wardmap.disabled = !byWard;
    if (!byWard && wardmap.selected) builder.querySelector("select[name=chart]").value = "bar";
  };
  if (wardmap) {
    for (const d of dims) d.addEventListener("change", offer);
    offer();
  }
}
