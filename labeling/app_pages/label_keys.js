// The Label page's keyboard (labeling/app_pages/label.py loads this once per browser tab).
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
  const SETTLE_MS = 4000; // a sent press whose run was never seen stops blocking after this

  const waiting = []; // presses made while the page was busy: {key, version}
  let sent = null; // the press sent last, until its run has finished: {at, version, ran}
  let version = 0; // +1 each time a different item (or no item) comes on screen
  let lastScreen = null;
  let changedThisRun = false;
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

  // What the person sees as "the item": its text and its "Item ID" caption.
  const screen = () => {
    const text = document.querySelector(".st-key-ll_text");
    const caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')].find(
      (c) => c.textContent.trim().startsWith("Item "),
    );
    return (text ? text.textContent : "") + "\u0000" + (caption ? caption.textContent : "");
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
    sent = { at: performance.now(), version, ran: false };
    changedThisRun = false;
    button.click();
  };

  const settled = () => {
    if (busy()) return false;
    if (sent === null) return true;
    if (sent.ran || version !== sent.version || performance.now() - sent.at > SETTLE_MS) {
      sent = null;
      return true;
    }
    return false;
  };

  const pump = () => {
    while (waiting.length > 0 && settled()) {
      const press = waiting.shift();
      if (press.version === version) {
        activate(press.key);
      } else {
        note(
          `Key ${press.key.toUpperCase()} was not applied: it was pressed on the item before, ` +
            "which had already been answered.",
        );
      }
    }
  };

  const tick = () => {
    if (waiting.length === 0 && sent === null && document.querySelector(MARKER) === null) {
      lastScreen = null; // another page: nothing to watch
      return;
    }
    const running = scriptState() === "running";
    if (running && sent !== null) sent.ranStarted = true;
    if (!running && sent !== null && sent.ranStarted) sent.ran = true;
    const now = screen();
    if (now !== lastScreen) {
      if (!changedThisRun) version += 1;
      changedThisRun = true;
      lastScreen = now;
    }
    if (!busy()) changedThisRun = false; // the next change is a new screen
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
    const known = key === "s" || key === "u" || (/^[1-9]$/.test(key) && Number(key) <= labelCount());
    if (!known) {
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
  tick();
})();
