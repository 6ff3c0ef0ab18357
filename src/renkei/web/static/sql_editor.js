// The SQL editor: CodeMirror 6 (vendored under /static/vendor/codemirror/) over the form's <textarea>.
// SQL highlighting, completion of the granted views and their columns, Ctrl/Cmd+Enter to run. The textarea
// stays the field the form submits (kept in step with the editor), so the page works the same without it.
// Tab leaves the editor as it leaves any field (no indent-with-Tab: keyboard users must not be trapped).
// The editor lives in a shadow root: there CodeMirror's styles are constructed style sheets (adoptedStyleSheets),
// whereas in the document itself it would add a <style> element, which the CSP (no inline style) refuses.
import { EditorState } from "/static/vendor/codemirror/@codemirror/state/index.js";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection,
} from "/static/vendor/codemirror/@codemirror/view/index.js";
import { defaultKeymap, history, historyKeymap } from "/static/vendor/codemirror/@codemirror/commands/index.js";
import {
  autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap,
} from "/static/vendor/codemirror/@codemirror/autocomplete/index.js";
import {
  syntaxHighlighting, defaultHighlightStyle, bracketMatching,
} from "/static/vendor/codemirror/@codemirror/language/index.js";
import { sql, PostgreSQL } from "/static/vendor/codemirror/@codemirror/lang-sql/index.js";

export function enhance(textarea, schema) {
  const form = textarea.form;
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  const run = () => {
    form.requestSubmit(form.querySelector('button[name="action"][value="run"]'));
    return true;
  };
  const host = document.createElement("div");
  host.className = "sql-editor-host";
  textarea.after(host);
  const root = host.attachShadow({ mode: "open" });
  const view = new EditorView({
    root,
    parent: root,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        history(),
        drawSelection(),
        highlightActiveLine(),
        bracketMatching(),
        closeBrackets(),
        autocompletion({ activateOnTyping: true }),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        sql({ dialect: PostgreSQL, schema, upperCaseKeywords: true }),
        keymap.of([{ key: "Mod-Enter", run }, ...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        EditorView.lineWrapping,
        EditorView.theme({
          "&": { border: "1px solid #cbd2d9", background: "#fff", minHeight: "8rem" },
          "&.cm-focused": { outline: "2px solid #1b5e9b" },
          ".cm-content, .cm-gutter": { minHeight: "8rem" },
          ".cm-scroller": { fontFamily: "monospace" },
        }),
        EditorView.contentAttributes.of({ "aria-label": label ? label.textContent.trim() : "SQL" }),
        // Typing over a selection: replace it through CodeMirror. Left to Chromium's own editing, replacing
        // highlighted text would try to add a style attribute, which the CSP refuses.
        EditorView.domEventHandlers({
          beforeinput(event, editor) {
            if (event.inputType !== "insertText" || !event.data || editor.composing) return false;
            if (editor.state.selection.ranges.every((range) => range.empty)) return false;
            event.preventDefault();
            editor.dispatch(editor.state.replaceSelection(event.data), { userEvent: "input.type", scrollIntoView: true });
            return true;
          },
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) textarea.value = update.state.doc.toString();
        }),
      ],
    }),
  });
  textarea.hidden = true;
  if (label) label.addEventListener("click", () => view.focus());
  return view;
}
