// The buffered Label page, part 2 of 5: the batches to `POST /label/batch` and their replies.

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
  // A release (the page before this one went) hands back all the tab held: nothing is kept.
  const releasing = ops.some((op) => op.op === "release");
  const refresh = S.refresh || releasing;
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
      if (refresh) resync(reply, releasing);
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
// quietly (labelling stopped and started again, say, which handed them back). After a
// release, so do the items undo brought back before it.
const resync = (reply, releasing) => {
  const undone = reply.undone || {};
  const held = new Set([
    ...(reply.items || []).map((item) => item.id),
    ...Object.values(undone).map((item) => item.id),
  ]);
  const back = (item) => item.undoCid && (!releasing || item.undoCid in undone);
  S.buffer = S.buffer.filter((item) => back(item) || held.has(item.id));
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
  if (reply.progress) {
    // Sent with every batch that answered something: "you today" moves with each answer.
    S.progress = reply.progress;
    S.progressStale = false;
  }
  S.done = Boolean(reply.done);
  S.empty = reply.empty ?? null;
  if (reply.one_item_page) {
    // prefetch was set to 0: the answers sent are in (acknowledged above); nothing more is
    // sent or leased here, and a reload shows the one-item page.
    S.halted = "the Label page now shows one item at a time (prefetch = 0)";
    message("The Label page now shows one item at a time: reload the page to go on.");
  }
};

// ---- the page goes (closed, reloaded, left) ------------------------------------------------

// Browsers carry at most 64 KiB of keepalive bodies at once.
const KEEPALIVE_MAX = 60_000;

// The page is going away: what is not acknowledged yet, then a release of the items this tab
// holds unanswered, in one request the browser still sends as the page closes. There is no
// telling a close from a reload here, so the release also stays in the outbox: a reloaded page
// sends it again first (applied once, whichever copy arrives first), then asks for its items
// anew, and the queue gives them back in the same order unless someone took them meanwhile.
// A page that never comes back has given its items back at once instead of after the short
// hold (buffer.py: TAB_HOLD_SECONDS), which covers a crash or a request that never arrived.
const onPageHide = () => {
  if (S.tab === null || S.halted !== null || S.signedOut) return;
  if (!S.outbox.some((op) => op.op === "release")) {
    S.outbox.push({ cid: randomId("c"), op: "release" });
  }
  const body = (sending) =>
    JSON.stringify({ tab: S.tab, ops: sending.map(wire), keep: [], want: 0 });
  const fits = (sending) => sending.length <= MAX_OPS && body(sending).length <= KEEPALIVE_MAX;
  // Too much for one request: the answers that fit go, without the release (it would hand
  // back items whose answers come later); those holds lapse on their own.
  let ops = fits(S.outbox) ? S.outbox : S.outbox.filter((op) => op.op !== "release");
  while (ops.length > 0 && !fits(ops)) ops = ops.slice(0, ops.length >> 1);
  for (const op of ops) op.sent = true;
  save();
  if (ops.length === 0) return;
  fetch(settings().route, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: body(ops),
    keepalive: true,
  }).catch(() => {}); // the page is gone: the outbox kept in the tab is the retry
};

// Back from the browser's back-forward cache: the release went, so the items shown are no
// longer held; the next reply brings the tab's items again.
const onPageShow = (event) => {
  if (!event.persisted) return;
  if (S.outbox.some((op) => op.op === "release")) S.buffer = [];
  S.refresh = true;
  render();
  pump();
};
