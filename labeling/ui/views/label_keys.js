// The Label page's keyboard (labeling/ui/views/label.py loads this once per browser tab).
//
// Streamlit's own button shortcuts match key codes, so the number pad does nothing, and a
// press made while the page redraws is lost: the new item's text appears before its buttons.
// This listener owns the page's keys instead:
//   * it reads the key the person typed (event.key), so the number pad works too;
//   * a press made while the page is redrawing waits, and is applied once the page has
//     settled, if the item that was on screen when the key went down is still the one on
//     screen; a press made on an item that has already gone (a second press before the next
//     item appeared) is not applied, and a note says so;
//   * a key that means nothing here gets a note naming the keys that do;
//   * with more than nine labels, `/` opens a picker: the letters typed after it narrow the
//     labels by name, Enter picks the highlighted match (the first, or the one the arrows
//     moved to), Escape closes it. Its pick goes through the same rules as a digit;
//   * in a multi-label workspace (the page has a Submit button) a digit or a pick TOGGLES its
//     label, Enter submits the chosen set and 0 the empty one ("none of these"); the set lives
//     in the server's session, per item, and each toggle is a click on the label's button, so
//     the rules above apply to toggles too. Enter with nothing chosen, or 0 with labels
//     chosen, finds its button disabled and says why: neither sends the other's answer.
// Which label a key means is decided in one place, `actionFor` (a digit, S, U) and the
// picker's Enter; labeling/ui/views/label_keys.py is the Python side (the keys the buttons
// show). It only clicks the page's own buttons, which carry their item's id to the server, and
// the server still refuses an answer for an item that is not in front of the person.
(() => {
  if (window.__labelloopKeys) return;
  window.__labelloopKeys = true;

  const MARKER = ".st-key-ll_keys"; // present only while the Label page is shown
  // A click that started no run within this time was lost (Streamlit can drop a button's
  // trigger that arrives while another run is starting): it is sent once more, then given up
  // with a note. Sending it again is safe: the server applies a press only to the item it was
  // made on, once.
  const LOST_MS = 2000;

  // DIGIT_LABELS, PICKER_KEY, typing, notOurs, claim, padDigit, labelMatches: keys_shared.js.
  const PICKER_SHOWN = 8; // matches listed in the picker's box

  const waiting = []; // presses made while the page was busy: {action, version}
  let sent = null; // the press sent last, until its run has finished
  // `version` counts the items that came on screen. It moves on when the text of a new item
  // appears, even mid-run (a press made from then on is meant for that item), or when the page
  // settles on a different item and text (a repeated text with another id); a redraw that
  // only blinks the same item leaves it alone.
  let version = 0;
  let settledScreen = null; // text and id of the item on screen when the page last settled
  let settledText = null;
  let movedThisRun = false;
  let noteTimer = null;
  // The labels as the buttons last showed them when the page settled: [{number, name}]. The
  // picker matches against these, also while the page redraws and the buttons are gone.
  let labels = [];
  let multi = false; // a multi-label page, as last settled (it has a Submit button)
  // The picker: open on the item of `version`; `text` typed so far; `at` the highlighted match.
  const picker = { open: false, text: "", at: 0, version: 0 };

  const scriptState = () => {
    const app = document.querySelector("[data-test-script-state]");
    return app ? app.getAttribute("data-test-script-state") : null;
  };

  const busy = () => {
    if (scriptState() === "running") return true;
    const conn = document.querySelector("[data-test-connection-state]");
    if (conn && conn.getAttribute("data-test-connection-state") !== "CONNECTED") return true;
    return document.querySelector('[data-stale="true"]') !== null;
  };

  // What the person reads as "the item": its text (null while none is drawn) and its id. An
  // item's box is never empty ("(empty text)" stands for an empty text), but mid-run its box
  // can be drawn before its text: that is no text yet, not a new item (a multi-label toggle
  // redraws the same item, and a press made meanwhile must still count for it).
  const itemText = () => {
    const text = document.querySelector(".st-key-ll_text");
    return text && text.textContent !== "" ? text.textContent : null;
  };
  const screen = () => {
    const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].find(
      (c) => c.textContent.trim().startsWith("Item "),
    );
    return (itemText() ?? "") + "\u0000" + (caption ? caption.textContent : "");
  };

  const SUBMIT = '[class*="st-key-submit_"] button';
  const NONE = '[class*="st-key-none_"] button';
  const ACCEPT = '[class*="st-key-ll_accept_"] button';
  const LABEL_KEY = /(?:^|\s)st-key-label_(\d+)_\d+(?:\s|$)/;
  const readLabels = () => {
    const found = [];
    for (const box of document.querySelectorAll('[class*="st-key-label_"]')) {
      const match = LABEL_KEY.exec(box.className);
      // The name as shown, without the key hint Streamlit draws inside the button.
      const name = box.querySelector('button [data-testid="stMarkdownContainer"]');
      if (match && name) found.push({ number: Number(match[1]), name: name.textContent.trim() });
    }
    return found.sort((a, b) => a.number - b.number);
  };
  const labelCount = () => labels.length;

  const note = (message) => {
    let box = document.getElementById("ll-key-note");
    if (box === null) {
      box = document.createElement("div");
      box.id = "ll-key-note";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      box.style.cssText =
        "position:fixed;left:50%;bottom:1.5rem;transform:translateX(-50%);z-index:1000;" +
        "max-width:40rem;padding:.6rem 1rem;border-radius:.5rem;font:inherit;" +
        "font-size:.95rem;background:#31333f;color:#fff;box-shadow:0 2px 8px rgba(0,0,0,.25)";
      document.body.appendChild(box);
    }
    box.textContent = message; // our words and label names, as text: never HTML
    box.hidden = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => {
      box.hidden = true;
    }, 3500);
  };

  // What a key means here, or null: the one place that maps keys to labels (the picker's Enter
  // makes a label action too, through `labelAction`). `said` names the press in notes.
  const labelAction = (number, said) => ({ kind: multi ? "toggle" : "label", number, said });
  const actionFor = (key) => {
    if (key === "s") return { kind: "skip", said: "Key S" };
    if (key === "u") return { kind: "undo", said: "Key U" };
    if (/^[1-9]$/.test(key)) return labelAction(Number(key), `Key ${key}`);
    if (multi && key === "enter") return { kind: "submit", said: "Enter" };
    if (key === "enter") return { kind: "accept", said: "Enter" };
    if (multi && key === "0") return { kind: "none", said: "Key 0" };
    if (key === "?") return { kind: "guide", said: "Key ?" };
    return null;
  };

  // The button an action stands for on the page as it is now, or null.
  const buttonFor = (action) => {
    if (action.kind === "skip") return document.querySelector('[class*="st-key-skip_"] button');
    if (action.kind === "undo") return document.querySelector('[class*="st-key-undo_"] button');
    if (action.kind === "submit") return document.querySelector(SUBMIT);
    if (action.kind === "none") return document.querySelector(NONE);
    if (action.kind === "accept") return document.querySelector(ACCEPT);
    if (action.kind === "guide") return document.querySelector('[class*="st-key-ll_guidelines"] button');
    return document.querySelector(`[class*="st-key-label_${action.number}_"] button`);
  };
  // A label toggled on shows as a primary button (label.py: _set_buttons).
  const isOn = (button) => button.getAttribute("data-testid") === "stBaseButton-primary";

  const hasPicker = () => labelCount() > DIGIT_LABELS;

  const keysHelp = () => {
    const n = labelCount();
    const verb = multi ? "toggle" : "label";
    const digits =
      n === 0 ? "" : n === 1 ? `1 ${verb}s, ` : `1-${Math.min(n, DIGIT_LABELS)} ${verb}, `;
    const find = hasPicker() ? `/ finds any of the ${n} labels by name, ` : "";
    const submit = multi ? "Enter submits, 0 answers none of these, " : "";
    return `${digits}${find}${submit}S skips, U undoes, ? opens the guidelines`;
  };

  // Why a submit's button is disabled (label.py disables Submit while nothing is chosen and
  // None of these while something is).
  const refused = (action) => {
    if (action.kind === "submit") {
      return "Nothing chosen yet: toggle the labels that apply (1-9), then Enter; 0 if none does.";
    }
    if (action.kind === "none") {
      return (
        "Key 0 answers none of these, but labels are chosen: Enter submits them, " +
        "or toggle them off first."
      );
    }
    return `${action.said} does nothing here (${keysHelp()}).`;
  };

  const activate = (action) => {
    const button = buttonFor(action);
    if (button === null || button.disabled) {
      note(button === null ? `${action.said} does nothing here (${keysHelp()}).` : refused(action));
      return;
    }
    if (action.kind === "toggle") {
      // A toggle sets the state its button shows the opposite of, once: sent again (below, a
      // click that started no run), it is not sent when the first one did arrive after all.
      const on = isOn(button);
      if (action.want === undefined) action.want = !on;
      else if (on === action.want) return;
    }
    sent = { at: performance.now(), version, action, tries: 1, started: false, ran: false };
    button.click();
  };

  // The picker's matches for what was typed, best first (keys_shared.js: labelMatches).
  const matchesFor = (typed) => labelMatches(labels, typed);

  let pickerDrawn = null; // what the picker's box shows now, to redraw only on a change
  const pickerBox = () => {
    let box = document.getElementById("ll-label-picker");
    if (box === null) {
      box = document.createElement("div");
      box.id = "ll-label-picker";
      box.setAttribute("role", "dialog");
      box.setAttribute("aria-label", "Find a label");
      document.body.appendChild(box);
      const style = document.createElement("style");
      style.textContent =
        "button[data-ll-pick]{outline:3px solid #ff4b4b !important;outline-offset:2px}" +
        "button[data-ll-dim]{opacity:.3}";
      document.head.appendChild(style);
    }
    // Over the sidebar's empty lower part (above its layer), so that no label button is hidden:
    // a long list of buttons fills the main column. In the corner when the sidebar is closed.
    const side = document.querySelector('[data-testid="stSidebar"]');
    const rect = side === null ? null : side.getBoundingClientRect();
    const place =
      rect !== null && rect.right > 200
        ? `left:${rect.left + 12}px;width:${rect.width - 24}px;`
        : "right:1rem;width:18rem;";
    box.style.cssText =
      `position:fixed;bottom:1.5rem;${place}z-index:1000000;box-sizing:border-box;` +
      "padding:.7rem 1rem;border-radius:.5rem;font:inherit;font-size:.95rem;" +
      "background:#fff;color:#31333f;border:2px solid #ff4b4b;" +
      "box-shadow:0 2px 10px rgba(0,0,0,.25);overflow-wrap:anywhere";
    return box;
  };

  // On the page itself: the button Enter presses is outlined, labels that do not match are
  // faded (once something is typed), so the matches stand out where the eye knows them.
  const markButtons = (found, chosen) => {
    const matching = new Set(found.map((label) => label.number));
    for (const box of document.querySelectorAll('[class*="st-key-label_"]')) {
      const match = LABEL_KEY.exec(box.className);
      const button = box.querySelector("button");
      if (match === null || button === null) continue;
      const number = Number(match[1]);
      const dim = picker.open && picker.text.trim() !== "" && !matching.has(number);
      if (button.hasAttribute("data-ll-dim") !== dim) button.toggleAttribute("data-ll-dim", dim);
      const pick = picker.open && number === chosen;
      if (button.hasAttribute("data-ll-pick") !== pick) {
        button.toggleAttribute("data-ll-pick", pick);
      }
    }
  };

  const line = (text, strong) => {
    const div = document.createElement("div");
    div.textContent = text; // our words and the labels' names: never HTML
    if (strong) div.style.cssText = "font-weight:600;background:#ffe8e8;border-radius:.25rem";
    return div;
  };

  const drawPicker = () => {
    if (!picker.open) {
      markButtons([], null);
      const box = document.getElementById("ll-label-picker");
      if (box !== null) box.hidden = true;
      pickerDrawn = null;
      return;
    }
    const found = matchesFor(picker.text);
    picker.at = Math.max(0, Math.min(picker.at, found.length - 1));
    markButtons(found, found.length > 0 ? found[picker.at].number : null);
    const shown = JSON.stringify([picker.text, picker.at, found.map((f) => f.number)]);
    if (shown === pickerDrawn) return;
    pickerDrawn = shown;
    const box = pickerBox();
    box.replaceChildren(line(`Find a label: ${picker.text}\u258f`, false));
    if (picker.text.trim() === "") {
      box.appendChild(line("Type a few letters of its name.", false));
    } else if (found.length === 0) {
      box.appendChild(line(`No label matches \u201c${picker.text}\u201d.`, false));
    }
    const first = Math.max(0, Math.min(picker.at - PICKER_SHOWN + 1, found.length - PICKER_SHOWN));
    found.slice(first, first + PICKER_SHOWN).forEach((label, k) => {
      const mine = first + k === picker.at;
      box.appendChild(line(`${mine ? "\u25b8" : "\u2003"} ${label.number}  ${label.name}`, mine));
    });
    if (found.length > PICKER_SHOWN) {
      box.appendChild(line(`${found.length} labels match: type more, or \u2191 \u2193`, false));
    }
    const enter = multi ? "Enter toggles" : "Enter picks";
    const help = line(`\u2191 \u2193 choose \u00b7 ${enter} \u00b7 Esc closes`, false);
    help.style.cssText = "opacity:.7;font-size:.85rem;margin-top:.3rem";
    box.appendChild(help);
    box.hidden = false;
  };

  const closePicker = () => {
    picker.open = false;
    picker.text = "";
    picker.at = 0;
    drawPicker();
  };

  const openPicker = () => {
    picker.open = true;
    picker.text = "";
    picker.at = 0;
    picker.version = version;
    drawPicker();
  };

  const settled = () => {
    if (busy()) return false;
    if (sent === null) return true;
    if (sent.ran || version !== sent.version) {
      sent = null;
      return true;
    }
    if (performance.now() - sent.at < LOST_MS) return false;
    const lost = sent;
    sent = null;
    if (lost.tries === 1) {
      activate(lost.action); // the same screen is still there: send it again
      if (sent !== null) sent.tries = 2;
      return sent === null;
    }
    note(`${lost.action.said} did not reach the server: press it again.`);
    return true;
  };

  const pump = () => {
    while (waiting.length > 0 && settled()) {
      const press = waiting.shift();
      if (press.version === version) {
        activate(press.action);
      } else {
        note(
          `${press.action.said} was not applied: it was pressed on the screen ` +
            "before, ahead of this item.",
        );
      }
    }
  };

  const tick = () => {
    if (waiting.length === 0 && sent === null && document.querySelector(MARKER) === null) {
      settledScreen = null; // another page: nothing to watch
      settledText = null;
      if (picker.open) closePicker();
      return;
    }
    const running = scriptState() === "running";
    if (running && sent !== null) sent.started = true;
    if (!running && sent !== null && sent.started) sent.ran = true;
    if (busy()) {
      const text = itemText();
      if (!movedThisRun && text !== null && settledText !== null && text !== settledText) {
        version += 1; // a new item's text is on screen, its buttons maybe not yet
        movedThisRun = true;
      }
    } else {
      const now = screen();
      if (now !== settledScreen) {
        if (!movedThisRun) version += 1;
        settledScreen = now;
        settledText = itemText();
      }
      movedThisRun = false;
      labels = readLabels();
      multi = document.querySelector(SUBMIT) !== null;
    }
    if (picker.open && picker.version !== version) {
      // Opened on an item that has gone: what was typed is not applied to the new one.
      closePicker();
      note("The label search was closed: another item came on screen. Press / again.");
    } else if (picker.open) {
      drawPicker(); // the buttons may have been drawn again: mark the highlighted one again
    }
    pump();
  };

  // The key as typed; the number pad's digits also when Num Lock is off. Enter is ours only on
  // a multi-label page (it submits the set); elsewhere it stays the browser's.
  const keyOf = (event) => {
    const pad = padDigit(event);
    if (pad !== null) return pad;
    // Single-label, Enter is ours only while a suggestion's Accept button is on the page.
    if (event.key === "Enter") return multi || document.querySelector(ACCEPT) ? "enter" : null;
    return event.key.length === 1 ? event.key.toLowerCase() : null;
  };

  // A press is applied now if the page has settled, else held until it has (see `pump`).
  const press = (action) => {
    tick();
    if (waiting.length === 0 && settled()) activate(action);
    else waiting.push({ action, version });
  };

  const pick = () => {
    tick(); // an item that came on screen meanwhile closes the picker (see `tick`)
    if (!picker.open) return;
    const found = matchesFor(picker.text);
    if (found.length === 0) {
      note(
        picker.text.trim() === ""
          ? "Type a few letters of a label's name, then Enter."
          : `No label matches \u201c${picker.text}\u201d: Backspace deletes, Esc closes.`,
      );
      return;
    }
    const chosen = found[Math.min(picker.at, found.length - 1)];
    closePicker();
    press(labelAction(chosen.number, `Enter (${chosen.name})`));
  };

  // A key while the picker is open; false for a key the picker leaves alone (Tab, F5, ...).
  const pickerKey = (event) => {
    const key = event.key;
    if (key === "Escape") closePicker();
    else if (key === "Enter") {
      if (!event.repeat) pick();
    } else if (key === "Backspace") {
      if (picker.text === "") closePicker();
      else picker.text = picker.text.slice(0, -1);
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      const n = matchesFor(picker.text).length;
      if (n > 0) picker.at = (picker.at + (key === "ArrowDown" ? 1 : n - 1)) % n;
    } else if (key.length === 1) {
      picker.text += key; // every letter is text here, S and U too
      picker.at = 0;
    } else {
      return false;
    }
    drawPicker();
    return true;
  };

  const onKey = (event) => {
    if (document.querySelector(MARKER) === null) return; // not on the Label page
    if (notOurs(event, keyOf)) return; // (keys_shared.js, as claim)
    if (picker.open) {
      if (pickerKey(event)) claim(event);
      return;
    }
    const key = keyOf(event);
    if (key === null || key === " ") return;
    claim(event); // ours from here on
    if (event.repeat) return; // a held key is one press
    if (key === PICKER_KEY && hasPicker()) {
      tick();
      openPicker();
      return;
    }
    // A digit without a label (7 of 5 labels) is told once the page has settled: mid-redraw
    // not every button is drawn yet.
    const action = actionFor(key);
    if (action === null) {
      note(`Key ${key.toUpperCase()} does nothing here (${keysHelp()}).`);
      return;
    }
    press(action);
  };

  window.addEventListener("keydown", onKey, true);
  // A click anywhere closes the picker, as a menu closes: the mouse has taken over.
  window.addEventListener(
    "pointerdown",
    () => {
      if (picker.open) closePicker();
    },
    true,
  );
  new MutationObserver(tick).observe(document.body, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
    attributeFilter: ["data-test-script-state", "data-stale", "data-test-connection-state"],
  });
  // For tests and for a look from the browser's console.
  window.__labelloopKeysState = () => ({
    waiting: waiting.length,
    sent: sent === null ? null : { ...sent },
    version,
    busy: busy(),
    stale: document.querySelectorAll('[data-stale="true"]').length,
    picker: { ...picker },
    labels: labels.length,
    multi,
  });
  setInterval(tick, 250); // time passes without DOM changes too (a lost click)
  tick();
})();
