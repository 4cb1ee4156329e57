// The buffered Label page (prefetch > 0): a Streamlit v2 component that owns the keyboard and
// draws the labelling surface itself, and talks to the server's `POST /label/batch`
// (labeling/ui/label_route.py) on its own, outside Streamlit's reruns.
//
// The tab holds the item on screen plus up to `prefetch` more, leased to this tab. A press
// answers the item on screen and paints the next one in the same frame (no await before the
// paint); the answer goes into an outbox that is sent to the route, one request at a time, and
// resent until acknowledged (the server applies each client id once). The tab id, the outbox,
// the buffer and the tab's answer history live in sessionStorage, so a reload loses nothing.
//
// Streamlit calls the default export again on every data change, without any cleanup, and
// keeps the component mounted across reruns (it has a key): the state lives on `window`, the
// listeners are added once, and each call only takes the new settings and redraws.
const STATE = "__labelloopBuffer";
const STORE_KEY = "labelloop-buffer";
const CHANNEL = "labelloop-tabs";
const DIGIT_LABELS = 9;
const HISTORY_MAX = 500; // answers kept for undo
const HISTORY_FULL = 50; // of which the newest keep their item, to show it again at once
const MAX_OPS = 200; // per request (the route's limit)
const MAX_KEEP = 50; // items listed as held per request (the route's limit)
const HEARTBEAT_MS = 60_000; // keeps the leases when nothing else is sent
const PROGRESS_MS = 4_000; // the progress counts are asked for at most this often
const REFILL_MS = 3_000; // a refill that brought nothing is asked again after this
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
const HELLO_MS = 250; // how long a restored tab listens for its twin before it sends
const SIGN_OUT_WAIT_MS = 5_000;
const LONG_TEXT = 900;
const NOTE_MS = 3_500;
const NOTE_MAX = 2_000; // characters of a flag's note (the route's limit)

const S = (window[STATE] ??= {
  started: false,
  settings: null,
  root: null,
  tab: null,
  nonce: null,
  person: null,
  buffer: [], // unanswered items, buffer[0] on screen
  outbox: [], // operations not yet acknowledged, in the order made
  history: [], // this tab's answers and skips: {cid, item, label, kind}
  round: undefined,
  inFlight: false,
  lastError: null,
  backoff: 0,
  retryAt: 0, // after a failed request, nothing is sent before this time
  timer: null,
  due: false, // a timer fired: send once even with nothing else to say
  reorder: false,
  refresh: false, // list no item as kept once: the server sends all the tab holds again
  signedOut: false,
  halted: null,
  maxOps: MAX_OPS,
  progress: null,
  progressAt: -Infinity,
  progressStale: false, // answers saved since the counts were last asked for
  done: false,
  empty: null,
  gotItems: true,
  messages: [],
  saved: null,
  note: null,
  noteTimer: null,
  picker: { open: false, text: "", at: 0, item: null },
  flagFor: null,
  sendAfter: 0,
  signOutOk: false,
  signingOut: false,
  shownId: null,
  shownAt: 0,
  drawn: null, // what the item area shows now (see itemShows)
});

// ---- ids and storage ------------------------------------------------------------------------

const randomId = (prefix) => {
  const bytes = new Uint8Array(16); // 128 bits; crypto.randomUUID is missing on plain http
  crypto.getRandomValues(bytes);
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
};

const save = () => {
  const state = {
    tab: S.tab,
    person: S.person,
    round: S.round,
    buffer: S.buffer,
    outbox: S.outbox,
    history: S.history,
  };
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
  } catch (error) {
    // Full storage: the oldest answers lose their text first (undo then waits for the server).
    S.history = S.history.slice(-HISTORY_FULL);
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify({ ...state, history: S.history }));
    } catch (again) {
      S.lastError = `could not keep the answers in this tab: ${again}`;
    }
  }
};

const load = () => {
  let stored = null;
  try {
    stored = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch (error) {
    stored = null;
  }
  S.nonce = randomId("n");
  if (stored && typeof stored.tab === "string") {
    S.tab = stored.tab;
    // Someone else signed in in this tab: what was kept belongs to the one before.
    if (stored.person === S.settings.person) {
      S.buffer = stored.buffer || [];
      S.outbox = stored.outbox || [];
      S.history = stored.history || [];
      S.round = stored.round;
    }
    S.sendAfter = performance.now() + HELLO_MS; // a duplicated tab hears so before it sends
  } else {
    S.tab = randomId("t");
  }
  S.person = S.settings.person;
  save();
};

// ---- helpers --------------------------------------------------------------------------------

const settings = () => S.settings;
const multi = () => Boolean(settings().multilabel);
const labels = () => settings().labels;
const want = () => 1 + Number(settings().prefetch || 0);
const mounted = () => S.root !== null && S.root.isConnected;
const onScreen = () => (S.buffer.length > 0 ? S.buffer[0] : null);
const pendingAnswers = () => S.outbox.filter((op) => op.op === "answer" || op.op === "skip").length;
const ordered = (names) => labels().filter((name) => names.includes(name));
const setText = (names) => (names.length ? names.join(", ") : "(none)");
const labelText = (value, missing) => {
  if (value === null || value === undefined) return missing;
  return Array.isArray(value) ? setText(ordered(value)) : String(value);
};
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// The suggestion shown with an item: none on an item brought back by undo (the person's own
// answer comes first there), and none when the anchoring draw withheld it (it is still sent).
const shownSuggestion = (item) => {
  const s = item.suggestion;
  if (!s || item.undo || s.withheld || s.value === null || s.value === undefined) return null;
  return s;
};

const startChosen = (item) => {
  if (item.undo) return Array.isArray(item.previous) ? ordered(item.previous) : [];
  const s = shownSuggestion(item);
  return s && Array.isArray(s.value) ? ordered(s.value) : [];
};

const message = (text) => {
  S.messages = [...S.messages.filter((m) => m !== text), text].slice(-4);
};

const note = (text) => {
  S.note = text;
  clearTimeout(S.noteTimer);
  S.noteTimer = setTimeout(() => {
    S.note = null;
    render();
  }, NOTE_MS);
};

const keysHelp = () => settings().keys_help || "";

// ---- the operations a press makes ------------------------------------------------------------

const remember = (entry) => {
  S.history.push(entry);
  if (S.history.length > HISTORY_MAX) S.history = S.history.slice(-HISTORY_MAX);
  const cut = S.history.length - HISTORY_FULL;
  for (let i = 0; i < cut; i += 1) {
    const old = S.history[i];
    if (old.item && old.item.text !== undefined) old.item = { id: old.item.id };
  }
};

const elapsed = (item) => (S.shownId === item.id ? Math.round(performance.now() - S.shownAt) : 0);

const wireSuggestion = (item) => {
  const s = item.suggestion;
  if (!s || item.undo) return null;
  return { value: s.value, source: s.source, withheld: Boolean(s.withheld) };
};

// Answer (label given) or skip (label null) the item on screen; the next one is painted now.
const answer = (label, itemId) => {
  const item = onScreen();
  if (item === null) return;
  if (itemId !== undefined && itemId !== item.id) {
    note(`Not applied: that click was for item ${itemId}, which is no longer on screen.`);
    render();
    return;
  }
  const cid = randomId("c");
  const kind = label === null ? "skip" : "answer";
  const op = { cid, op: kind, item: item.id, ms: elapsed(item), suggestion: wireSuggestion(item) };
  if (kind === "answer") op.label = label;
  S.outbox.push(op);
  const { chosen, undoCid, ...kept } = item;
  remember({ cid, item: kept, label, kind });
  S.buffer.shift();
  S.messages = [];
  closePicker();
  S.flagFor = null;
  save();
  render();
  pump();
};

const undo = () => {
  closePicker();
  S.flagFor = null;
  S.saved = null;
  const last = S.history.pop();
  if (last === undefined) {
    S.outbox.push({ cid: randomId("c"), op: "undo", of: null });
    note("Going back to your earlier answer…");
  } else {
    const at = S.outbox.findIndex((op) => op.cid === last.cid);
    if (at !== -1 && !S.outbox[at].sent) {
      // Never sent: the answer is cancelled here, and the item is simply shown again.
      S.outbox.splice(at, 1);
      if (last.item.text !== undefined) S.buffer.unshift({ ...last.item });
    } else {
      const cid = randomId("c");
      // An older answer kept without its text: its item comes with the reply.
      const fromReply = last.item.text === undefined;
      const op = { cid, op: "undo", of: last.cid };
      S.outbox.push(fromReply ? { ...op, fromReply } : op);
      if (!fromReply) {
        const previous = last.kind === "skip" ? null : last.label;
        S.buffer.unshift({ ...last.item, undo: true, previous, undoCid: cid });
      }
    }
  }
  save();
  render();
  pump();
};

const flag = (itemId, text) => {
  S.outbox.push({ cid: randomId("c"), op: "flag", item: itemId, note: text });
  S.flagFor = null;
  message(flagging(itemId));
  save();
  render();
  pump();
};

const flagging = (itemId) => `Flagging item ${itemId} for the leads' review…`;

const toggle = (name) => {
  const item = onScreen();
  if (item === null) return;
  const chosen = item.chosen ?? startChosen(item);
  item.chosen = chosen.includes(name)
    ? chosen.filter((n) => n !== name)
    : ordered([...chosen, name]);
  save();
  render();
};

const submit = (empty) => {
  const item = onScreen();
  if (item === null) return;
  const chosen = item.chosen ?? startChosen(item);
  if (empty && chosen.length) {
    note(
      `Not saved: ${setText(chosen)} chosen for item ${item.id}, and Enter submits them. ` +
        "To answer “None of these”, toggle them off first.",
    );
    render();
  } else if (!empty && !chosen.length) {
    note(
      `Nothing chosen for item ${item.id}: toggle its labels (their keys, or click them) and ` +
        "press Enter, or press 0 for “None of these”.",
    );
    render();
  } else {
    answer(empty ? [] : chosen);
  }
};

const labelAt = (number) => {
  const name = labels()[number - 1];
  if (name === undefined) return false;
  if (multi()) toggle(name);
  else answer(name);
  return true;
};

// ---- talking to the server -------------------------------------------------------------------

const wire = (op) => {
  const { sent, fromReply, ...body } = op;
  return body;
};

// A timer that sends when it fires: a heartbeat, a retry, a refill tried again, fresh counts.
const schedule = (ms) => {
  clearTimeout(S.timer);
  S.timer = setTimeout(() => {
    S.timer = null;
    S.due = true;
    pump();
  }, ms);
};

const needsSending = () =>
  S.due ||
  S.outbox.length > 0 ||
  S.reorder ||
  S.refresh ||
  (S.buffer.length < want() && !S.done && S.gotItems);

// Send now if nothing is in flight and something is due.
const pump = () => {
  if (S.inFlight || S.halted !== null) return;
  const wait = Math.max(S.sendAfter, S.retryAt) - performance.now();
  if (wait > 0) {
    schedule(wait);
    return;
  }
  if (!mounted()) {
    // Another page (or labelling stopped): answers still go, but nothing new is leased.
    if (S.outbox.length > 0) send();
    return;
  }
  const progressDue = S.progressAt + PROGRESS_MS - performance.now();
  if (needsSending() || (S.progressStale && progressDue <= 0)) send();
  else if (S.progressStale) schedule(progressDue);
  else if (S.timer === null) {
    schedule(S.buffer.length < want() && !S.done ? REFILL_MS : HEARTBEAT_MS);
  }
};

const send = async () => {
  clearTimeout(S.timer);
  S.timer = null;
  S.due = false;
  const ops = S.outbox.slice(0, S.maxOps);
  for (const op of ops) op.sent = true; // from now on undo of it is an undo op
  save();
  const reorder = S.reorder;
  const refresh = S.refresh;
  const keep = (refresh ? [] : S.buffer)
    .filter((item) => !item.undoCid)
    .map((item) => item.id)
    .slice(0, MAX_KEEP);
  const asksProgress = performance.now() - S.progressAt > PROGRESS_MS;
  const body = {
    tab: S.tab,
    ops: ops.map(wire),
    keep,
    want: mounted() ? want() : 0,
    reorder,
    hints: Boolean(settings().hints),
    progress: asksProgress,
  };
  S.inFlight = true;
  let retryIn = 0;
  try {
    const response = await fetch(settings().route, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let reply = null;
    try {
      reply = await response.json();
    } catch (error) {
      reply = null;
    }
    retryIn = handleStatus(response.status, reply, ops);
    if (response.status === 200 && reply !== null) {
      if (refresh) resync(reply);
      applyReply(reply, ops, keep, reorder);
      if (refresh) S.refresh = false;
      if (asksProgress) {
        S.progressAt = performance.now(); // counts made after this batch's answers
        S.progressStale = false;
      }
    }
  } catch (error) {
    S.lastError = `network: ${error}`;
    retryIn = backoff();
  } finally {
    S.inFlight = false;
  }
  save();
  render();
  S.retryAt = retryIn > 0 ? performance.now() + retryIn : 0;
  if (retryIn > 0) schedule(retryIn);
  else pump();
};

const backoff = () => {
  S.backoff = S.backoff ? Math.min(BACKOFF_MAX_MS, S.backoff * 2) : BACKOFF_MIN_MS;
  return S.backoff;
};

// What a status means; the delay before the next try (0: go on as usual).
const handleStatus = (status, reply, ops) => {
  const sentOps = ops.length;
  const said = reply && typeof reply.error === "string" ? reply.error : null;
  const bad = status === 400 && said !== null ? /^ops\[(\d+)\]/.exec(said) : null;
  if (bad !== null && ops[Number(bad[1])] !== undefined) {
    // One operation the server cannot take (it names it): dropped, said, the others go on.
    const op = ops[Number(bad[1])];
    S.outbox = S.outbox.filter((mine) => mine.cid !== op.cid);
    S.history = S.history.filter((entry) => entry.cid !== op.cid);
    message(`Not saved${op.item ? ` (item ${op.item})` : ""}: ${said}`);
    S.lastError = said;
    return BACKOFF_MIN_MS;
  }
  if (status === 200 && reply !== null) {
    S.backoff = 0;
    S.lastError = null;
    S.signedOut = false;
    return 0;
  }
  if (status === 401) {
    S.signedOut = true;
    S.lastError = said || "signed out";
    return BACKOFF_MAX_MS; // tried again: a sign-in in another tab sets the cookie for this one
  }
  if (status === 413 && sentOps > 1) {
    S.maxOps = Math.max(1, Math.floor(sentOps / 2));
    return BACKOFF_MIN_MS;
  }
  if (status === 400 || status === 403 || status === 413) {
    S.halted = said || `the server refused the answers (HTTP ${status})`;
    S.lastError = S.halted;
    message(`Not sent: ${S.halted}. Your answers are kept in this tab; reload the page to retry.`);
    return 0;
  }
  S.lastError = said || `HTTP ${status}`;
  return backoff();
};

const applyAcks = (reply, ops) => {
  const byCid = new Map(ops.map((op) => [op.cid, op]));
  const acked = new Set();
  for (const ack of reply.acks || []) {
    const op = byCid.get(ack.cid);
    if (op === undefined) continue;
    acked.add(ack.cid);
    const answered = op.op === "answer" || op.op === "skip";
    if (ack.ok) {
      if (answered) S.progressStale = true;
      // Not said for an item brought back by undo since: it is on screen to be changed.
      if (answered && S.buffer.some((item) => item.id === op.item)) continue;
      if (op.op === "answer") S.saved = `Saved: ${op.item} → ${labelText(op.label, "")}`;
      if (op.op === "skip") S.saved = `Skipped ${op.item}`;
      if (op.op === "flag") {
        S.messages = S.messages.filter((m) => m !== flagging(op.item));
        message(`Flagged item ${op.item} for the leads' review.`);
      }
      continue;
    }
    if (ack.error) message(ack.error);
    if (op.op === "answer" || op.op === "skip") {
      S.history = S.history.filter((entry) => entry.cid !== op.cid);
      const gone = ack.item ?? op.item;
      if (op.op === "answer") S.buffer = S.buffer.filter((item) => item.id !== gone);
    } else if (op.op === "undo") {
      S.buffer = S.buffer.filter((item) => item.undoCid !== op.cid);
    }
  }
  S.outbox = S.outbox.filter((op) => !acked.has(op.cid));
  S.maxOps = MAX_OPS;
};

// The items undo brought back: the server's copy replaces the one shown at once; an undo
// into the person's older history (`of: null`) shows its item only now.
const applyUndone = (undone, ops) => {
  const intoHistory = new Set(
    ops.filter((op) => op.op === "undo" && (!op.of || op.fromReply)).map((op) => op.cid),
  );
  for (const [cid, item] of Object.entries(undone || {})) {
    const at = S.buffer.findIndex((held) => held.undoCid === cid);
    if (at !== -1) {
      const { chosen } = S.buffer[at];
      S.buffer[at] = chosen === undefined ? { ...item } : { ...item, chosen };
    } else if (intoHistory.has(cid) && !S.buffer.some((held) => held.id === item.id)) {
      S.buffer.unshift({ ...item });
    }
  }
};

// The reply to a call that listed nothing as kept names every item the tab holds (in `items`,
// or in `undone` for an undo of the same call): the others are no longer held, and go
// quietly (labelling stopped and started again, say, which handed them back).
const resync = (reply) => {
  const held = new Set([
    ...(reply.items || []).map((item) => item.id),
    ...Object.values(reply.undone || {}).map((item) => item.id),
  ]);
  S.buffer = S.buffer.filter((item) => item.undoCid || held.has(item.id));
};

// An item with an answer or skip of this tab still waiting for its acknowledgement.
const answeredHere = (id) =>
  S.outbox.some((op) => (op.op === "answer" || op.op === "skip") && op.item === id);

const applyReply = (reply, ops, keep, reorder) => {
  applyAcks(reply, ops);
  applyUndone(reply.undone, ops);
  const dropped = new Set();
  for (const gone of reply.dropped || []) {
    dropped.add(gone.item);
    // Said for the item on screen, which changes under the person's eyes; the others go quietly.
    const shown = onScreen();
    if (shown !== null && shown.id === gone.item && !shown.undoCid && gone.error) {
      message(gone.error);
    }
  }
  if (reorder) {
    // keep[1:] went back to the queue; the item on screen now stays (an answer to it is
    // refused with a message if it went to someone else).
    const handedBack = new Set(keep.slice(1));
    S.buffer = S.buffer.filter((item, at) => at === 0 || item.undo || !handedBack.has(item.id));
    S.reorder = false;
  }
  S.buffer = S.buffer.filter((item) => item.undoCid || !dropped.has(item.id));
  const returned = reply.items || [];
  let added = 0;
  for (const item of returned) {
    const held = S.buffer.find((mine) => mine.id === item.id);
    if (held !== undefined) held.hint = item.hint; // sent again (a refresh): its hint now
    if (held !== undefined || answeredHere(item.id)) continue;
    S.buffer.push({ ...item });
    added += 1;
  }
  S.gotItems = added > 0 || ops.length > 0;
  if (reply.round !== undefined) {
    // A newly promoted round: the next call asks for the queue's new order.
    if (S.round !== undefined && reply.round !== null && reply.round !== S.round) S.reorder = true;
    S.round = reply.round;
  }
  if (reply.progress) S.progress = reply.progress;
  S.done = Boolean(reply.done);
  S.empty = reply.empty ?? null;
  if (reply.one_item_page) {
    // prefetch was set to 0: the answers sent are in (acknowledged above); nothing more is
    // sent or leased here, and a reload shows the one-item page.
    S.halted = "the Label page now shows one item at a time (prefetch = 0)";
    message("The Label page now shows one item at a time: reload the page to go on.");
  }
};

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

// ---- the label picker (more than nine labels) ------------------------------------------------

const pickerMatches = () => {
  const wanted = S.picker.text.trim().toLowerCase();
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
  return labels()
    .map((name, at) => ({ name, number: at + 1, rank: rank(name) }))
    .filter((label) => label.rank < 3)
    .sort((a, b) => a.rank - b.rank || a.number - b.number);
};

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

const NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset", "range", "color", "file"];
const typing = (target) => {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const input = target.closest("input");
  if (input !== null) return !NOT_TEXT.includes((input.type || "text").toLowerCase());
  return target.closest("textarea, select, [contenteditable='true'], [role='combobox']") !== null;
};

const keyOf = (event) => {
  const pad = /^Numpad([0-9])$/.exec(event.code || "");
  if (pad) return pad[1];
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
  else if (key === "/" && labels().length > DIGIT_LABELS) {
    S.picker = { open: true, text: "", at: 0, item: item.id };
    render();
  } else return false;
  return true;
};

const onKey = (event) => {
  if (!mounted()) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  if (typing(event.target)) return;
  if (document.querySelector('[data-testid="stDialog"]') !== null) {
    if (keyOf(event) !== null) event.stopPropagation(); // nothing is answered behind it
    return;
  }
  if (S.picker.open) {
    if (pickerKey(event)) {
      event.preventDefault();
      event.stopPropagation();
    }
    return;
  }
  const key = keyOf(event);
  if (key === null || key === " ") return;
  event.preventDefault();
  event.stopPropagation(); // Streamlit's own shortcuts (R for rerun) never see it
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

const start = () => {
  S.started = true;
  load();
  listenForTwins();
  window.addEventListener("keydown", onKey, true);
  window.addEventListener("click", onSignOutClick, true);
  window.__labelloopBufferState = () => ({
    tab: S.tab,
    buffer: S.buffer.map((item) => item.id),
    outbox: S.outbox.length,
    pending: pendingAnswers(),
    inFlight: S.inFlight,
    lastError: S.lastError,
    signedOut: S.signedOut,
    round: S.round ?? null,
    done: S.done,
    history: S.history.length,
  });
};

export default function (component) {
  const { data, parentElement } = component;
  const hintsBefore = S.settings ? Boolean(S.settings.hints) : null;
  S.settings = data;
  if (!S.started) start();
  let root = parentElement.querySelector(".ll-b-root");
  if (root === null) {
    root = el("div", "ll-b-root");
    parentElement.appendChild(root);
  }
  // Mounted again (the page was left, or labelling stopped and started): ask what is held.
  if (S.root !== null && S.root !== root) S.refresh = true;
  S.root = root;
  if (hintsBefore === false && data.hints) S.refresh = true; // the items held, with hints
  render();
  pump();
}
