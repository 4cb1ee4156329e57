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
//   * a key that means nothing here gets a note naming the keys that do.
// It only clicks the page's own buttons, which carry their item's id to the server, and the
// server still refuses an answer for an item that is not in front of the person.
(() => {
  if (window.__labelloopKeys) return;
  window.__labelloopKeys = true;

  const MARKER = ".st-key-ll_keys"; // present only while the Label page is shown
  // A click that started no run within this time was lost (Streamlit can drop a button's
  // trigger that arrives while another run is starting): it is sent once more, then given up
  // with a note. Sending it again is safe: the server applies a press only to the item it was
  // made on, once.
  const LOST_MS = 2000;

  const waiting = []; // presses made while the page was busy: {key, version}
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

  // What the person reads as "the item": its text (null while none is drawn) and its id.
  const itemText = () => {
    const text = document.querySelector(".st-key-ll_text");
    return text ? text.textContent : null;
  };
  const screen = () => {
    const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].find(
      (c) => c.textContent.trim().startsWith("Item "),
    );
    return (itemText() ?? "") + "\u0000" + (caption ? caption.textContent : "");
  };

  const labelCount = () => document.querySelectorAll('[class*="st-key-label_"] button').length;

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
    box.textContent = message; // our own words only: never data, never HTML
    box.hidden = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => {
      box.hidden = true;
    }, 3500);
  };

  // The button a key stands for on the page as it is now, or null.
  const buttonFor = (key) => {
    if (key === "s") return document.querySelector('[class*="st-key-skip_"] button');
    if (key === "u") return document.querySelector('[class*="st-key-undo_"] button');
    return document.querySelector(`[class*="st-key-label_${key}_"] button`);
  };

  const keysHelp = () => {
    const n = labelCount();
    const labels = n === 0 ? "" : n === 1 ? "1 labels, " : `1-${Math.min(n, 9)} label, `;
    return `${labels}S skips, U undoes`;
  };

  const activate = (key) => {
    const button = buttonFor(key);
    if (button === null || button.disabled) {
      note(`Key ${key.toUpperCase()} does nothing here (${keysHelp()}).`);
      return;
    }
    sent = { at: performance.now(), version, key, tries: 1, started: false, ran: false };
    button.click();
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
      activate(lost.key); // the same screen is still there: send it again
      if (sent !== null) sent.tries = 2;
      return sent === null;
    }
    note(`Key ${lost.key.toUpperCase()} did not reach the server: press it again.`);
    return true;
  };

  const pump = () => {
    while (waiting.length > 0 && settled()) {
      const press = waiting.shift();
      if (press.version === version) {
        activate(press.key);
      } else {
        note(
          `Key ${press.key.toUpperCase()} was not applied: it was pressed on the screen ` +
            "before, ahead of this item.",
        );
      }
    }
  };

  const tick = () => {
    if (waiting.length === 0 && sent === null && document.querySelector(MARKER) === null) {
      settledScreen = null; // another page: nothing to watch
      settledText = null;
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
    }
    pump();
  };

  // The key as typed; the number pad's digits also when Num Lock is off.
  const keyOf = (event) => {
    const pad = /^Numpad([0-9])$/.exec(event.code || "");
    if (pad) return pad[1];
    return event.key.length === 1 ? event.key.toLowerCase() : null;
  };

  // Keys typed into a text box are text. A focused toggle or button is not a text box: after
  // a click on the sidebar's toggle the keys still label.
  const NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset", "range", "color", "file"];
  const typing = (target) => {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable) return true;
    const input = target.closest("input");
    if (input !== null) return !NOT_TEXT.includes((input.type || "text").toLowerCase());
    return target.closest("textarea, select, [contenteditable='true'], [role='combobox']") !== null;
  };

  const onKey = (event) => {
    if (document.querySelector(MARKER) === null) return; // not on the Label page
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) return;
    const key = keyOf(event);
    if (key === null || key === " ") return;
    // Ours from here on: Streamlit's own shortcuts (the buttons', R for rerun), which listen
    // on the document, never see it. Other listeners on the window still do.
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat) return; // a held key is one press
    // A digit without a label (7 of 5 labels) is told once the page has settled: mid-redraw
    // not every button is drawn yet.
    if (key !== "s" && key !== "u" && !/^[1-9]$/.test(key)) {
      note(`Key ${key.toUpperCase()} does nothing here (${keysHelp()}).`);
      return;
    }
    tick();
    if (waiting.length === 0 && settled()) activate(key);
    else waiting.push({ key, version });
  };

  window.addEventListener("keydown", onKey, true);
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
  });
  setInterval(tick, 250); // time passes without DOM changes too (a lost click)
  tick();
})();
