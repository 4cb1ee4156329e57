// What both Label pages' keyboards share, in one place: the one-item page's listener
// (label_keys.js, joined after this file by label.py) and the buffered page's component
// (label_buffer.js, joined after it by label_buffer.py). Each page runs it in a scope of its
// own, so nothing here lands on `window`.

const DIGIT_LABELS = 9; // labels with a digit of their own (label_keys.py: DIGIT_LABELS)
const PICKER_KEY = "/"; // opens the label picker (label_keys.py: PICKER_KEY)

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

// Whether a key press is none of the page's business: a shortcut with a modifier, text typed
// into a box, or a press while a dialog (the guidelines) is open, which has the keys: nothing
// is answered behind it, and the buttons' own shortcuts (they listen on the document) must
// not fire either. `keyOf` is the page's reading of a key (null: not one of its keys).
const notOurs = (event, keyOf) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return true;
  if (typing(event.target)) return true;
  if (document.querySelector('[data-testid="stDialog"]') === null) return false;
  if (keyOf(event) !== null) event.stopPropagation();
  return true;
};

// Keep a key the page acted on from everyone else: Streamlit's own shortcuts (the buttons',
// R for rerun), which listen on the document, never see it. Listeners on the window still do.
const claim = (event) => {
  event.preventDefault();
  event.stopPropagation();
};

// The digit a number-pad key stands for, also when Num Lock is off; null for any other key.
const padDigit = (event) => {
  const pad = /^Numpad([0-9])$/.exec(event.code || "");
  return pad ? pad[1] : null;
};

// The picker's matches for what was typed among `labels` ({number, name, ...}), best first:
// names that start with it, then names with a word that starts with it, then names that
// contain it; in label order within each.
const labelMatches = (labels, typed) => {
  const wanted = typed.trim().toLowerCase();
  if (wanted === "") return [];
  const rank = (name) => {
    const lower = name.toLowerCase();
    let best = 3;
    for (let at = lower.indexOf(wanted); at !== -1; at = lower.indexOf(wanted, at + 1)) {
      const wordStart = at === 0 || !/[\p{L}\p{N}]/u.test(lower[at - 1]);
      best = Math.min(best, at === 0 ? 0 : wordStart ? 1 : 2);
    }
    return best;
  };
  return labels
    .map((label) => ({ ...label, rank: rank(label.name) }))
    .filter((label) => label.rank < 3)
    .sort((a, b) => a.rank - b.rank || a.number - b.number);
};
