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
//
// The script is built from parts, joined in this order by label_buffer.py (PARTS) into the one
// module the component runs, so that they share one scope:
//   keys_shared.js   what this page and the one-item page's label_keys.js both need;
//   buffer_state.js  the state, its storage in the tab, the operations a press makes;
//   buffer_send.js   the batches to the server, their replies, the release when the tab goes;
//   buffer_draw.js   drawing;
//   buffer_keys.js   the picker, the keys, sign-out, twin tabs;
//   label_buffer.js  (this file) starting up, and the component's entry point.

const start = () => {
  S.started = true;
  load();
  listenForTwins();
  window.addEventListener("keydown", onKey, true);
  window.addEventListener("click", onSignOutClick, true);
  window.addEventListener("pagehide", onPageHide);
  window.addEventListener("pageshow", onPageShow);
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
