/**
 * The script editor: CodeMirror 6 (line numbers, history, bracket matching, search,
 * highlighting per script type from lib/script_languages.ts), themed with the console's
 * light or dark mode. CodeMirror needs no eval and only injects style elements, which
 * the console's CSP allows (`style-src 'self' 'unsafe-inline'`). Tab is left to the
 * browser, so keyboard users can leave the editor; indentation is Ctrl+] / Ctrl+[.
 *
 * @module
 */
import {
  defaultKeymap,
  history,
  historyKeymap,
  indentLess,
  indentMore,
} from "@codemirror/commands";
import {
  bracketMatching,
  HighlightStyle,
  indentOnInput,
  syntaxHighlighting,
} from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { tags } from "@lezer/highlight";
import Box from "@mui/material/Box";
import { useColorScheme } from "@mui/material/styles";
import { useEffect, useRef } from "react";
import { languageFor } from "../lib/script_languages.ts";

// Colours chosen for 4.5:1 contrast on the editor's background in each mode.
const lightHighlight = HighlightStyle.define([
  { tag: tags.comment, color: "#5c6b3a", fontStyle: "italic" },
  { tag: [tags.keyword, tags.controlKeyword, tags.operatorKeyword], color: "#8a1f9e" },
  { tag: [tags.string, tags.special(tags.string)], color: "#a1260d" },
  { tag: [tags.variableName, tags.propertyName], color: "#0b4f8a" },
  { tag: [tags.number, tags.bool, tags.atom], color: "#0a6b4f" },
  { tag: [tags.labelName, tags.meta], color: "#7a4a00" },
  { tag: [tags.standard(tags.variableName), tags.function(tags.variableName)], color: "#00607a" },
]);
const darkHighlight = HighlightStyle.define([
  { tag: tags.comment, color: "#a8c48a", fontStyle: "italic" },
  { tag: [tags.keyword, tags.controlKeyword, tags.operatorKeyword], color: "#e3a6ff" },
  { tag: [tags.string, tags.special(tags.string)], color: "#ffb59e" },
  { tag: [tags.variableName, tags.propertyName], color: "#9fd0ff" },
  { tag: [tags.number, tags.bool, tags.atom], color: "#8ee6c4" },
  { tag: [tags.labelName, tags.meta], color: "#ffd58a" },
  { tag: [tags.standard(tags.variableName), tags.function(tags.variableName)], color: "#7fe0f5" },
]);

const baseTheme = EditorView.theme({
  "&": { fontSize: "13px", height: "100%" },
  ".cm-scroller": {
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    lineHeight: "1.5",
  },
  "&.cm-focused": { outline: "2px solid #0b5cad", outlineOffset: "-2px" },
});
const lightTheme = EditorView.theme({
  "&": { backgroundColor: "#ffffff", color: "#1f1f1f" },
  ".cm-gutters": { backgroundColor: "#f5f5f5", color: "#595959", border: "none" },
  ".cm-activeLine": { backgroundColor: "#f0f6ff" },
  ".cm-activeLineGutter": { backgroundColor: "#e3eefc" },
}, { dark: false });
const darkTheme = EditorView.theme({
  "&": { backgroundColor: "#1a1a1a", color: "#e8e8e8" },
  ".cm-gutters": { backgroundColor: "#222222", color: "#a0a0a0", border: "none" },
  ".cm-activeLine": { backgroundColor: "#24303d" },
  ".cm-activeLineGutter": { backgroundColor: "#2a3644" },
  ".cm-cursor": { borderLeftColor: "#ffffff" },
  "&.cm-focused": { outline: "2px solid #7cc4ff" },
}, { dark: true });

/** Props of {@link CodeEditor}. */
export interface CodeEditorProps {
  value: string;
  onChange?: (value: string) => void;
  /** Script type: powershell, bash, batch, python, ansible, workflow. */
  language: string | null | undefined;
  /** Accessible name of the editing area. */
  label: string;
  readOnly?: boolean;
  height?: number | string;
}

/** A CodeMirror editor bound to `value`. */
export function CodeEditor(
  { value, onChange, language, label, readOnly = false, height = 360 }: CodeEditorProps,
) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChangeRef = useRef(onChange);
  onChangeRef.current = onChange;
  const langSlot = useRef(new Compartment());
  const themeSlot = useRef(new Compartment());
  const readOnlySlot = useRef(new Compartment());
  const labelSlot = useRef(new Compartment());
  const { mode, systemMode } = useColorScheme();
  const dark = (mode === "system" ? systemMode : mode) === "dark";

  useEffect(() => {
    const lang = languageFor(language);
    const v = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: value,
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          history(),
          drawSelection(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          highlightSelectionMatches(),
          keymap.of([
            ...defaultKeymap,
            ...historyKeymap,
            ...searchKeymap,
            { key: "Mod-]", run: indentMore },
            { key: "Mod-[", run: indentLess },
          ]),
          baseTheme,
          themeSlot.current.of(
            dark
              ? [darkTheme, syntaxHighlighting(darkHighlight)]
              : [lightTheme, syntaxHighlighting(lightHighlight)],
          ),
          langSlot.current.of(lang ? [lang] : []),
          readOnlySlot.current.of([
            EditorState.readOnly.of(readOnly),
            EditorView.editable.of(!readOnly),
          ]),
          labelSlot.current.of(EditorView.contentAttributes.of({
            "aria-label": label,
            "aria-multiline": "true",
            role: "textbox",
          })),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) onChangeRef.current?.(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The editor is made once; later prop changes are applied below.
  }, []);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const lang = languageFor(language);
    v.dispatch({ effects: langSlot.current.reconfigure(lang ? [lang] : []) });
  }, [language]);

  useEffect(() => {
    view.current?.dispatch({
      effects: labelSlot.current.reconfigure(EditorView.contentAttributes.of({
        "aria-label": label,
        "aria-multiline": "true",
        role: "textbox",
      })),
    });
  }, [label]);

  useEffect(() => {
    view.current?.dispatch({
      effects: themeSlot.current.reconfigure(
        dark
          ? [darkTheme, syntaxHighlighting(darkHighlight)]
          : [lightTheme, syntaxHighlighting(lightHighlight)],
      ),
    });
  }, [dark]);

  useEffect(() => {
    view.current?.dispatch({
      effects: readOnlySlot.current.reconfigure([
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
      ]),
    });
  }, [readOnly]);

  // A value set from outside (load, import) replaces the text; typing does not loop back.
  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const current = v.state.doc.toString();
    if (current !== value) {
      v.dispatch({ changes: { from: 0, to: current.length, insert: value } });
    }
  }, [value]);

  return (
    <Box
      ref={host}
      data-testid="code-editor"
      data-language={language ?? "text"}
      sx={{
        height,
        border: 1,
        borderColor: "divider",
        borderRadius: 1,
        overflow: "hidden",
      }}
    />
  );
}
