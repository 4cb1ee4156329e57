// The buffered Label page, part 3 of 5: drawing the item, its buttons and the progress line.

// ---- drawing --------------------------------------------------------------------------------

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // data is always text, never HTML
  return node;
};

const button = (text, className, onClick, key) => {
  const node = el("button", `ll-b-button ${className || ""}`);
  node.type = "button";
  node.appendChild(el("span", "ll-b-name", text));
  if (key) node.appendChild(el("kbd", "ll-b-key", key));
  node.addEventListener("click", (event) => {
    event.preventDefault();
    onClick();
  });
  return node;
};

const progressLine = () => {
  const box = el("div", "ll-b-progress");
  const p = S.progress;
  if (!p) return box;
  const share = p.pool ? Math.min(1, p.labelled / p.pool) : 0;
  // The line's words come from the server (progress_text): one definition for both pages.
  box.appendChild(el("div", "ll-b-progress-text", p.text || ""));
  const bar = el("div", "ll-b-bar");
  const fill = el("div", "ll-b-bar-fill");
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  bar.appendChild(fill);
  box.appendChild(bar);
  return box;
};

const statusLines = (parts) => {
  const pending = pendingAnswers();
  const badge = el("div", "ll-b-pending", `${plural(pending, "answer", "answers")} sending`);
  badge.hidden = pending === 0;
  parts.push(badge);
  if (S.signedOut) {
    parts.push(
      el(
        "div",
        "ll-b-warning ll-b-signed-out",
        `Signed out: sign in again; ${plural(pending, "answer is", "answers are")} kept in ` +
          "this tab and will be sent.",
      ),
    );
  }
  for (const text of S.messages) parts.push(el("div", "ll-b-warning", text));
  if (S.saved) parts.push(el("div", "ll-b-saved", S.saved));
};

const itemParts = (item, parts) => {
  if (item.undo) {
    const before = labelText(item.previous, "skipped");
    const how =
      multi() && item.previous !== null
        ? "It is chosen again below: change it and press Enter."
        : "Pick the answer it should have.";
    const said = `Going back: your earlier answer was “${before}”. ${how}`;
    parts.push(el("div", "ll-b-info", said));
  }
  const text = el("div", "ll-b-text", item.text ? item.text : "(empty text)");
  if ((item.text || "").length > LONG_TEXT) text.classList.add("ll-b-long");
  parts.push(text);
  const fields = (item.fields || []).filter(([, value]) => value !== null && value !== "");
  if (fields.length) {
    parts.push(el("div", "ll-b-fields", fields.map(([n, v]) => `${n}: ${v}`).join("   ")));
  }
  const caption = el("div", "ll-b-caption", `Item ${item.id}`);
  caption.setAttribute("data-testid", "stCaptionContainer"); // as the classic page's caption
  parts.push(caption);
  const s = shownSuggestion(item);
  if (s) {
    const sure =
      typeof s.confidence === "number" ? `, ${Math.round(s.confidence * 100)}% sure` : "";
    const source = { model: "the model", llm: "the LLM", weak: "the weak label" }[s.source];
    let how = "Enter accepts it, a digit answers with another label";
    if (multi()) {
      how = s.value.length
        ? "Enter accepts it, digits change it"
        : "0 accepts it (none of these), digits change it";
    }
    const said = labelText(s.value, "");
    const line = `Suggested by ${source || s.source}${sure}: ${said} · ${how}.`;
    parts.push(el("div", "ll-b-caption", line));
  }
};

const labelButtons = (item) => {
  const grid = el("div", "ll-b-labels");
  grid.style.gridTemplateColumns = `repeat(${Math.min(labels().length, 5)}, minmax(0, 1fr))`;
  const s = shownSuggestion(item);
  const chosen = multi() ? (item.chosen ?? startChosen(item)) : [];
  labels().forEach((name, at) => {
    const number = at + 1;
    const key = number <= DIGIT_LABELS ? String(number) : null;
    let node;
    if (multi()) {
      const on = chosen.includes(name);
      node = button(`${on ? "☑" : "☐"} ${name}`, on ? "ll-b-primary" : "", () => {
        if (onScreen()?.id === item.id) toggle(name);
      }, key);
      node.setAttribute("aria-pressed", String(on));
    } else {
      const strong = name === item.previous || (s !== null && name === s.value);
      node = button(name, strong ? "ll-b-primary" : "", () => answer(name, item.id), key);
    }
    node.dataset.label = String(number);
    if (S.picker.open && pickerMatches()[S.picker.at]?.number === number) {
      node.classList.add("ll-b-pick"); // the label Enter picks, outlined where the eye knows it
    }
    grid.appendChild(node);
  });
  return grid;
};

const actionRow = (item) => {
  const row = el("div", "ll-b-actions");
  if (multi()) {
    const chosen = item.chosen ?? startChosen(item);
    const here = () => onScreen()?.id === item.id;
    const submitButton = button(
      "Submit",
      "ll-b-primary ll-b-submit",
      () => here() && submit(false),
      "Enter",
    );
    submitButton.disabled = chosen.length === 0;
    const none = button("None of these", "ll-b-none", () => here() && submit(true), "0");
    none.disabled = chosen.length > 0;
    row.append(submitButton, none);
  } else {
    const s = shownSuggestion(item);
    if (s) {
      const accept = () => answer(s.value, item.id);
      row.appendChild(button(`Accept ${s.value}`, "ll-b-accept", accept, "Enter"));
    }
  }
  row.appendChild(button("Skip", "ll-b-skip", () => answer(null, item.id), "S"));
  row.appendChild(button("Undo", "ll-b-undo", undo, "U"));
  row.appendChild(button("Flag", "ll-b-flag", () => {
    S.flagFor = S.flagFor === item.id ? null : item.id;
    render();
    document.querySelector(".ll-b-flag-note")?.focus();
  }));
  return row;
};

const flagBox = (item) => {
  const box = el("div", "ll-b-flagbox");
  box.appendChild(el("label", "ll-b-caption", "What is wrong with this item?"));
  const area = el("textarea", "ll-b-flag-note");
  area.maxLength = NOTE_MAX;
  area.placeholder = "e.g. two requests in one message; the text is cut off";
  box.appendChild(area);
  box.appendChild(button("Flag for review", "ll-b-flag-send", () => flag(item.id, area.value)));
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      S.flagFor = null;
      render();
    }
  });
  return box;
};

const emptyParts = (parts) => {
  if (S.signedOut || S.halted !== null) return;
  if (!S.done) {
    parts.push(el("div", "ll-b-caption", "Fetching the next items…"));
    return;
  }
  parts.push(el("div", "ll-b-success", "Nothing to label right now."));
  if (S.empty) parts.push(el("div", "ll-b-empty", String(S.empty)));
  const row = el("div", "ll-b-actions");
  row.appendChild(button("Check again", "ll-b-check", () => {
    S.done = false;
    S.gotItems = true;
    render();
    pump();
  }));
  row.appendChild(button("Undo", "ll-b-undo", undo, "U"));
  parts.push(row);
};

// The item and its buttons: drawn again only when what they show changes, so that a reply
// arriving between a button's mousedown and its mouseup does not swallow the click.
const itemArea = (item) => {
  const parts = [];
  itemParts(item, parts);
  parts.push(labelButtons(item));
  if (labels().length > DIGIT_LABELS) {
    const does = multi() ? "Enter toggles it" : "Enter";
    parts.push(
      el(
        "div",
        "ll-b-caption",
        `Labels ${DIGIT_LABELS + 1}-${labels().length} have no digit: press / and type a few ` +
          `letters of the name, then ${does} (↑ ↓ choose among the matches, Esc closes).`,
      ),
    );
  }
  if (multi()) {
    const chosen = item.chosen ?? startChosen(item);
    const line = el("div", "ll-b-chosen");
    line.appendChild(el("strong", "", chosen.length ? "Chosen: " : "Nothing chosen yet: "));
    line.appendChild(
      document.createTextNode(
        chosen.length
          ? setText(chosen)
          : "toggle the labels that apply, then Enter; 0 if none of them does.",
      ),
    );
    parts.push(line);
  }
  parts.push(actionRow(item));
  if (S.flagFor === item.id) parts.push(flagBox(item));
  if (settings().hints) {
    const h = item.hint;
    const sure =
      h && typeof h.confidence === "number" ? ` (${Math.round(h.confidence * 100)}% sure)` : "";
    parts.push(
      el(
        "div",
        "ll-b-caption ll-b-hint",
        h
          ? `Model hint (round ${h.round}): ${labelText(h.label, "")}${sure}`
          : "Model hint: no model has scored this item yet.",
      ),
    );
  }
  return parts;
};

// Everything the item area shows, to tell whether it must be drawn again.
const itemShows = (item) =>
  JSON.stringify([
    item,
    S.flagFor,
    S.picker,
    settings().labels,
    settings().multilabel,
    Boolean(settings().hints),
    item === null ? null : pickerMatches().map((m) => m.number),
  ]);

const render = () => {
  if (!mounted()) return;
  let status = S.root.querySelector(":scope > .ll-b-status");
  let area = S.root.querySelector(":scope > .ll-b-item");
  let legend = S.root.querySelector(":scope > .ll-b-note");
  if (status === null || area === null || legend === null) {
    status = el("div", "ll-b-status");
    area = el("div", "ll-b-item");
    legend = el("div", "ll-b-note");
    legend.setAttribute("role", "status");
    S.root.replaceChildren(status, area, legend);
    S.drawn = null;
  }
  const top = [progressLine()];
  statusLines(top);
  const item = onScreen();
  if (item !== null && S.shownId !== item.id) {
    S.shownId = item.id;
    S.shownAt = performance.now();
  }
  if (S.picker.open && (item === null || S.picker.item !== item.id)) closePicker();
  if (item === null) emptyParts(top);
  status.replaceChildren(...top);
  const shows = item === null ? null : itemShows(item);
  if (shows !== S.drawn) {
    const flagNote = area.querySelector(".ll-b-flag-note");
    const typed = flagNote ? flagNote.value : null;
    const focused = flagNote !== null && document.activeElement === flagNote;
    area.replaceChildren(...(item === null ? [] : itemArea(item)));
    if (S.picker.open) area.appendChild(pickerBox());
    const again = area.querySelector(".ll-b-flag-note");
    if (again && typed !== null) {
      again.value = typed;
      if (focused) again.focus();
    }
    S.drawn = shows;
  }
  legend.textContent = S.note ?? "";
  legend.hidden = S.note === null;
};
