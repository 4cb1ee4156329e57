// The buffered Label page, part 1 of 5 (label_buffer.py joins the parts, in the order of its
// PARTS, into the one script the component runs): the state on `window`, what sessionStorage
// keeps of it, and the operations a press makes.
const STATE = "__labelloopBuffer";
const STORE_KEY = "labelloop-buffer";
const CHANNEL = "labelloop-tabs";
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
      // The page before went with a release (buffer_send.js: onPageHide): its items were
      // handed back, and a press on one would be refused, so none is shown until the first
      // reply gives the tab its items again (in the queue's order: mostly the same ones).
      if (S.outbox.some((op) => op.op === "release")) S.buffer = [];
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
