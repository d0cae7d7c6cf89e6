// What both benchmark pages share: the median, and leaving the result (or
// the error) on window.benchResult, where the driver polls for it.

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export function publish(run) {
  const out = document.getElementById('out');
  run().then(
    (r) => {
      window.benchResult = r;
      out.textContent = JSON.stringify(r, null, 2);
    },
    (e) => {
      window.benchResult = { error: String(e?.stack ?? e) };
      out.textContent = String(e);
    },
  );
}
