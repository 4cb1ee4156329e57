// The buffered Label page, part 4 of 5: the label picker, the keys, sign-out and twin tabs.

// ---- the label picker (more than nine labels) ------------------------------------------------

const pickerMatches = () =>
  labelMatches(
    labels().map((name, at) => ({ name, number: at + 1 })),
    S.picker.text,
  );

function closePicker() {
  S.picker = { open: false, text: "", at: 0, item: null };
}

const pickerBox = () => {
  const box = el("div", "ll-b-picker");
  // Over the sidebar's empty lower part, so that no label button is hidden; in the corner when
  // the sidebar is closed.
  const side = document.querySelector('[data-testid="stSidebar"]');
  const rect = side === null ? null : side.getBoundingClientRect();
  if (rect !== null && rect.right > 200) {
    box.style.left = `${rect.left + 12}px`;
    box.style.right = "auto";
    box.style.width = `${rect.width - 24}px`;
  }
  box.setAttribute("role", "dialog");
  box.appendChild(el("div", "", `Find a label: ${S.picker.text}▏`));
  const found = pickerMatches();
  if (S.picker.text.trim() === "") {
    box.appendChild(el("div", "", "Type a few letters of its name."));
  } else if (found.length === 0) {
    box.appendChild(el("div", "", `No label matches “${S.picker.text}”.`));
  }
  found.slice(0, 8).forEach((label, at) => {
    const mine = at === S.picker.at;
    const text = `${mine ? "▸" : " "} ${label.number}  ${label.name}`;
    box.appendChild(el("div", mine ? "ll-b-picked" : "", text));
  });
  const enter = multi() ? "Enter toggles" : "Enter picks";
  box.appendChild(el("div", "ll-b-caption", `↑ ↓ choose · ${enter} · Esc closes`));
  return box;
};

const pickerKey = (event) => {
  const key = event.key;
  if (key === "Escape") {
    closePicker();
  } else if (key === "Enter") {
    const found = pickerMatches();
    if (found.length === 0) {
      note(`No label matches “${S.picker.text}”: Backspace deletes, Esc closes.`);
    } else {
      const chosen = found[Math.min(S.picker.at, found.length - 1)];
      closePicker();
      labelAt(chosen.number);
      return true;
    }
  } else if (key === "Backspace") {
    if (S.picker.text === "") closePicker();
    else S.picker.text = S.picker.text.slice(0, -1);
  } else if (key === "ArrowDown" || key === "ArrowUp") {
    const n = Math.min(8, pickerMatches().length);
    if (n > 0) S.picker.at = (S.picker.at + (key === "ArrowDown" ? 1 : n - 1)) % n;
  } else if (key.length === 1) {
    S.picker.text += key;
    S.picker.at = 0;
  } else {
    return false;
  }
  render();
  return true;
};

// ---- keys -----------------------------------------------------------------------------------

const keyOf = (event) => {
  const pad = padDigit(event);
  if (pad !== null) return pad;
  if (event.key === "Enter") {
    const item = onScreen();
    return item !== null && (multi() || shownSuggestion(item)) ? "enter" : null;
  }
  return event.key && event.key.length === 1 ? event.key.toLowerCase() : null;
};

const act = (key) => {
  const item = onScreen();
  if (key === "?") {
    document.querySelector(`.st-key-${settings().guide_button} button`)?.click();
    return true;
  }
  if (key === "u") {
    undo();
    return true;
  }
  if (item === null) return false;
  if (key === "s") answer(null);
  else if (/^[1-9]$/.test(key)) return labelAt(Number(key));
  else if (key === "enter" && multi()) submit(false);
  else if (key === "enter") answer(shownSuggestion(item).value);
  else if (key === "0" && multi()) submit(true);
  else if (key === PICKER_KEY && labels().length > DIGIT_LABELS) {
    S.picker = { open: true, text: "", at: 0, item: item.id };
    render();
  } else return false;
  return true;
};

const onKey = (event) => {
  if (!mounted() || notOurs(event, keyOf)) return;
  if (S.picker.open) {
    if (pickerKey(event)) claim(event);
    return;
  }
  const key = keyOf(event);
  if (key === null || key === " ") return;
  claim(event);
  if (event.repeat) return; // a held key is one press
  if (!act(key)) {
    const waiting = onScreen() === null && !S.done && S.halted === null;
    note(
      waiting
        ? `Key ${key.toUpperCase()} was not applied: no item is on screen yet ` +
            "(the next ones are on their way)."
        : `Key ${key.toUpperCase()} does nothing here. ${keysHelp()}`,
    );
    render();
  }
};

// ---- sign-out, twins, start -------------------------------------------------------------------

const onSignOutClick = (event) => {
  const target = event.target instanceof Element ? event.target : null;
  const signOut = target?.closest(".st-key-ll_sign_out button");
  if (!signOut || S.signOutOk) return;
  event.preventDefault();
  event.stopPropagation();
  if (S.signingOut) return; // already waiting for the answers to go
  S.signingOut = true;
  const until = performance.now() + SIGN_OUT_WAIT_MS;
  const check = () => {
    pump();
    const pending = pendingAnswers();
    if (pending > 0 && performance.now() < until) {
      setTimeout(check, 100);
      return;
    }
    S.signingOut = false;
    const discard =
      `${plural(pending, "answer has", "answers have")} not reached the server. ` +
      "Sign out and discard them?";
    if (pending > 0 && !window.confirm(discard)) return;
    S.buffer = [];
    S.outbox = [];
    S.history = [];
    save();
    S.signOutOk = true;
    signOut.click();
    S.signOutOk = false;
  };
  check();
};

const listenForTwins = () => {
  if (typeof BroadcastChannel === "undefined") return;
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = ({ data }) => {
    if (!data) return;
    // Two newcomers with one id (both restored at once): only the smaller nonce keeps it.
    const newcomer = performance.now() < S.sendAfter;
    if (data.hello === S.tab && data.nonce !== S.nonce && (!newcomer || S.nonce < data.nonce)) {
      channel.postMessage({ taken: S.tab, nonce: data.nonce });
    } else if (data.taken === S.tab && data.nonce === S.nonce) {
      // A copy of a live tab: what was copied belongs to the original.
      S.tab = randomId("t");
      S.buffer = [];
      S.outbox = [];
      S.history = [];
      S.sendAfter = 0;
      save();
      render();
      pump();
    }
  };
  channel.postMessage({ hello: S.tab, nonce: S.nonce });
};
