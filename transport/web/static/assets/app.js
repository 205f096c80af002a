// phonepipe browser page: upload a file, follow the import's progress over
// the progress WebSocket (resuming with ?since= after a drop), then show the
// counts and the result downloads. Talks only to the same origin.
"use strict";

(() => {
  const KEY_STORAGE = "phonepipe.apiKey";
  const BACKOFF_MIN_MS = 250;
  const BACKOFF_MAX_MS = 10000;
  const MAX_ATTEMPTS = 20; // consecutive failed connections before giving up

  const $ = (sel) => document.querySelector(sel);
  const form = $("#upload-form");
  const fileInput = $("#file");
  const drop = $("#drop");
  const dropHint = $("#drop-hint");
  const region = $("#region");
  const apiKey = $("#api-key");
  const webhook = $("#webhook");
  const submit = $("#submit");
  const errorBox = $("#error");
  const job = $("#job");
  const status = $("#status");
  const conn = $("#conn");
  const progress = $("#progress");
  const percent = $("#percent");
  const rows = $("#rows");
  const done = $("#done");
  const fmt = new Intl.NumberFormat();

  let current = null; // the import being watched: {id, stop()}

  // --- API key, remembered in localStorage ---------------------------------
  try { apiKey.value = localStorage.getItem(KEY_STORAGE) || ""; } catch { /* storage disabled */ }
  apiKey.addEventListener("change", () => {
    try {
      if (apiKey.value.trim()) localStorage.setItem(KEY_STORAGE, apiKey.value.trim());
      else localStorage.removeItem(KEY_STORAGE);
    } catch { /* storage disabled */ }
  });
  const key = () => apiKey.value.trim();
  const authHeaders = () => (key() ? { Authorization: "Bearer " + key() } : {});

  // --- file picking: picker or drag and drop ---------------------------------
  const showFile = () => {
    const f = fileInput.files[0];
    dropHint.textContent = f ? `Selected: ${f.name} (${fmt.format(f.size)} bytes)` : "…or drop a file anywhere in this box.";
  };
  fileInput.addEventListener("change", showFile);
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      fileInput.files = e.dataTransfer.files;
      showFile();
    }
  });

  // --- errors ----------------------------------------------------------------
  const showError = (title, detail) => {
    errorBox.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = title;
    errorBox.append(strong);
    if (detail) errorBox.append(detail);
    errorBox.hidden = false;
  };
  const clearError = () => { errorBox.hidden = true; errorBox.replaceChildren(); };

  // apiError turns a failed answer into {title, detail} using the API's
  // {"error":{"code","message","line"}} shape when the body has it.
  const apiError = async (resp) => {
    let body = null;
    try { body = await resp.json(); } catch { /* not JSON */ }
    const e = body && body.error;
    if (e && e.message) {
      let detail = e.message;
      if (e.line) detail += ` (line ${e.line})`;
      if (e.code) detail += ` [${e.code}]`;
      return { title: `The server refused the request (${resp.status}).`, detail };
    }
    return { title: `The server answered ${resp.status} ${resp.statusText}.`, detail: "" };
  };

  // --- rendering ---------------------------------------------------------------
  const render = (im) => {
    const total = Number(im.total) || 0;
    const processed = Math.min(Number(im.processed) || 0, total);
    const complete = im.status === "completed";
    progress.max = Math.max(total, 1);
    progress.value = complete ? progress.max : processed;
    const pct = complete ? 100 : total ? Math.floor((processed * 100) / total) : 0;
    percent.textContent = pct + "%";
    rows.textContent = `${fmt.format(processed)} of ${fmt.format(total)} rows processed`;
    status.textContent = im.status || "";
    status.dataset.status = im.status || "";
  };

  const finish = (im) => {
    render(im);
    for (const name of ["total", "valid", "invalid", "duplicates", "failed"]) {
      $(`#summary [data-count=${name}]`).textContent = String(Number(im[name]) || 0);
    }
    conn.textContent = "";
    done.hidden = false;
    submit.disabled = false;
  };

  // --- downloads: plain links, fetched with the key when one is set -----------
  const setDownloads = (id) => {
    for (const [format, ext] of [["csv", "csv"], ["ndjson", "ndjson"]]) {
      const a = $(`#download-${format}`);
      a.href = `/v1/imports/${encodeURIComponent(id)}/results?format=${format}`;
      a.download = `${id}.${ext}`;
    }
  };
  for (const a of [$("#download-csv"), $("#download-ndjson")]) {
    a.addEventListener("click", async (e) => {
      if (!key()) return; // no auth: the browser downloads the link itself
      e.preventDefault();
      try {
        const resp = await fetch(a.href, { headers: authHeaders() });
        if (!resp.ok) {
          const { title, detail } = await apiError(resp);
          showError(title, detail);
          return;
        }
        const url = URL.createObjectURL(await resp.blob());
        const tmp = document.createElement("a");
        tmp.href = url;
        tmp.download = a.download;
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      } catch (err) {
        showError("The download failed.", String(err));
      }
    });
  }

  // --- live progress -----------------------------------------------------------
  // watch follows import id over the progress WebSocket until it completes.
  // When the socket drops first, it checks the import over HTTP (which also
  // surfaces 401/404) and reconnects with ?since=<last seq> after a growing,
  // jittered delay.
  const watch = (id) => {
    let lastSeq = 0;
    let attempts = 0;
    let stopped = false;
    let ws = null;
    let timer = 0;

    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      if (ws) ws.close(1000);
    };

    const fail = (title, detail) => {
      stop();
      conn.textContent = "";
      submit.disabled = false;
      showError(title, detail);
    };

    const connect = () => {
      if (stopped) return;
      const params = new URLSearchParams();
      if (lastSeq > 0) params.set("since", String(lastSeq));
      if (key()) params.set("token", key());
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const qs = params.toString();
      ws = new WebSocket(`${scheme}//${location.host}/v1/imports/${encodeURIComponent(id)}/progress${qs ? "?" + qs : ""}`);
      ws.addEventListener("message", (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        attempts = 0;
        conn.textContent = "";
        if (msg.type === "completed") {
          stopped = true;
          finish(msg.import);
          return;
        }
        // Every message carries the full state; skip only stale ones.
        if (msg.type === "snapshot" || msg.seq > lastSeq) render(msg.import);
        lastSeq = Math.max(lastSeq, Number(msg.seq) || 0);
      });
      ws.addEventListener("close", () => {
        ws = null;
        if (!stopped) reconnect();
      });
    };

    const reconnect = async () => {
      attempts++;
      if (attempts > MAX_ATTEMPTS) {
        fail("Lost the live connection to the server.", "Reload the page to try again; the import continues on the server.");
        return;
      }
      // Ask over plain HTTP: it tells an unreachable server from a refused
      // request, and may already show completion.
      try {
        const resp = await fetch(`/v1/imports/${encodeURIComponent(id)}`, { headers: authHeaders() });
        if (resp.status >= 400 && resp.status < 500) {
          const { title, detail } = await apiError(resp);
          fail(title, detail);
          return;
        }
        if (resp.ok) {
          const im = await resp.json();
          if (stopped) return;
          if (im.status === "completed") {
            stopped = true;
            finish(im);
            return;
          }
          render(im);
        }
      } catch { /* unreachable: retry below */ }
      if (stopped) return;
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempts - 1));
      const delay = base / 2 + Math.random() * base / 2;
      conn.textContent = `Connection lost; reconnecting in ${Math.ceil(delay / 1000)} s (attempt ${attempts})…`;
      timer = setTimeout(connect, delay);
    };

    connect();
    return { id, stop };
  };

  // --- upload ------------------------------------------------------------------
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const f = fileInput.files[0];
    if (!f) {
      showError("Choose a file first.", "Pick a CSV or JSON file, or drop one on the box.");
      fileInput.focus();
      return;
    }
    if (current) current.stop();
    current = null;

    const body = new FormData();
    const r = region.value.trim().toUpperCase();
    if (r) body.set("default_region", r);
    if (webhook.value.trim()) body.set("webhook_url", webhook.value.trim());
    body.set("file", f, f.name);

    submit.disabled = true;
    job.hidden = true;
    done.hidden = true;
    let resp;
    try {
      resp = await fetch("/v1/imports", { method: "POST", body, headers: authHeaders() });
    } catch (err) {
      submit.disabled = false;
      showError("Could not reach the server.", String(err));
      return;
    }
    if (!resp.ok) {
      submit.disabled = false;
      const { title, detail } = await apiError(resp);
      showError(title, detail);
      return;
    }
    const acc = await resp.json();
    $("#import-id").textContent = acc.id;
    setDownloads(acc.id);
    render({ status: acc.status || "accepted", total: acc.total, processed: 0 });
    job.hidden = false;
    current = watch(acc.id);
  });
})();
