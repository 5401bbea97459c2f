// The live dashboard. Plain JavaScript, no dependencies: it calls the query API on its own origin
// with the API key as a bearer token (never in a URL), polls /summary and /projections every
// POLL_MS and redraws only what changed. Money is shown exactly as the API sends it (strings).
"use strict";

(() => {
  const POLL_MS = 500;
  const PAGE_SIZE = 20;
  const CHART_ENTRIES = 100;
  const KEY_STORAGE = "bank-dashboard-api-key";
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    timer: null,
    lastSummary: null,
    lastProjections: null,
    projectionsAllowed: true,
    sort: "id",
    order: "asc",
    accountCursors: [null], // the keyset cursor of each page visited; the last one is shown
    detail: null, // {id, beforeVersions: [null, ...], stale}
  };

  // --- talking to the query API --------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(detail);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, token = state.token) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (_) {
      throw new ApiError(0, "network", "the query API did not answer");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const code = body && body.error ? body.error : `http_${response.status}`;
      const detail = body && body.detail ? body.detail : response.statusText;
      throw new ApiError(response.status, code, detail);
    }
    return body;
  }

  function query(path, params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) search.set(name, String(value));
    }
    const text = search.toString();
    return text ? `${path}?${text}` : path;
  }

  // --- small DOM helpers -----------------------------------------------------------------------

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (className) td.className = className;
    return td;
  }

  function timeCell(iso, timeOnly = false) {
    // "2026-01-02T03:04:05.123+00:00" -> "2026-01-02 03:04:05" (or "03:04:05"); the full value
    // stays in `datetime` and the tooltip.
    const td = document.createElement("td");
    if (!iso) {
      td.textContent = "never";
      return td;
    }
    const time = document.createElement("time");
    time.dateTime = iso;
    const utc = /(\+00:00|Z)$/.test(iso);
    time.title = iso;
    const short = iso.replace("T", " ").slice(0, 19);
    time.textContent = utc ? (timeOnly ? short.slice(11) : short) : iso;
    td.append(time);
    return td;
  }

  function moneyCell(text, extra = "") {
    const negative = text && text.startsWith("-") ? " negative" : "";
    return cell(text, `num${negative} ${extra}`.trim());
  }

  function fillBody(table, rows) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...rows);
  }

  function emptyRow(columns, text) {
    const tr = document.createElement("tr");
    const td = cell(text, "muted");
    td.colSpan = columns;
    tr.append(td);
    return tr;
  }

  function setMoney(id, text) {
    const element = $(id);
    element.textContent = text;
    element.classList.toggle("negative", text.startsWith("-"));
  }

  function showProblem(text) {
    $("problem").textContent = text;
    $("problem").hidden = !text;
  }

  // --- sign-in ---------------------------------------------------------------------------------

  function explainRefusal(error) {
    if (error.status === 401) return "This API key was not accepted: it is unknown or revoked.";
    if (error.status === 403) return "This API key lacks the read scope.";
    if (error.status === 0) return "The query API did not answer; try again.";
    return `The key could not be checked (${error.code}: ${error.message}); try again.`;
  }

  async function signIn(token) {
    const summary = await api("/summary", token); // throws on a wrong key
    state.token = token;
    sessionStorage.setItem(KEY_STORAGE, token);
    $("sign-in").hidden = true;
    $("sign-in-error").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = false;
    state.projectionsAllowed = true;
    state.lastSummary = null;
    state.lastProjections = null;
    renderSummary(summary);
    await Promise.all([loadAccounts(), loadProjections()]);
    markUpdated();
    schedule();
  }

  function signOut(message) {
    clearTimeout(state.timer);
    state.token = null;
    state.detail = null;
    sessionStorage.removeItem(KEY_STORAGE);
    $("dashboard").hidden = true;
    $("account-detail").hidden = true;
    $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("live-status").textContent = "";
    showProblem("");
    $("sign-in-error").textContent = message || "";
    $("sign-in-error").hidden = !message;
    $("api-key").value = "";
    $("api-key").focus();
  }

  async function onSignIn(event) {
    event.preventDefault();
    const token = $("api-key").value.trim();
    if (!token) return;
    try {
      await signIn(token);
      $("api-key").value = "";
    } catch (error) {
      sessionStorage.removeItem(KEY_STORAGE);
      $("sign-in-error").textContent = explainRefusal(error);
      $("sign-in-error").hidden = false;
    }
  }

  // --- summary and projections -----------------------------------------------------------------

  function renderSummary(summary) {
    $("count-accounts").textContent = summary.accounts;
    $("count-open").textContent = summary.open_accounts;
    $("count-events").textContent = summary.events_projected;
    const currencies = Object.keys(summary.balances_by_currency).sort();
    fillBody(
      "totals",
      currencies.length
        ? currencies.map((currency) => {
            const tr = document.createElement("tr");
            tr.append(cell(currency), moneyCell(summary.balances_by_currency[currency]));
            return tr;
          })
        : [emptyRow(2, "No money yet.")],
    );
  }

  async function loadProjections() {
    if (!state.projectionsAllowed) return false;
    let projections;
    try {
      projections = await api("/projections");
    } catch (error) {
      if (error.status !== 403) throw error;
      state.projectionsAllowed = false;
      $("projections-note").textContent =
        "This API key lacks the admin scope, so projection status is not shown. " +
        "Sign in with an admin key to see each projection's checkpoint, head and lag.";
      $("projections-note").hidden = false;
      $("projections-table").hidden = true;
      return false;
    }
    const text = JSON.stringify(projections);
    if (text === state.lastProjections) return false;
    state.lastProjections = text;
    $("projections-note").hidden = true;
    $("projections-table").hidden = false;
    fillBody(
      "projections-table",
      projections.map((p) => {
        const tr = document.createElement("tr");
        tr.append(
          cell(p.name),
          cell(p.generation, "num"),
          cell(p.checkpoint, "num"),
          cell(p.head, "num"),
          cell(p.lag, "num"),
          timeCell(p.last_advanced_at, true),
        );
        return tr;
      }),
    );
    return true;
  }

  // --- accounts --------------------------------------------------------------------------------

  async function loadAccounts() {
    const cursor = state.accountCursors[state.accountCursors.length - 1];
    const page = await api(
      query("/accounts", { sort: state.sort, order: state.order, limit: PAGE_SIZE, cursor }),
    );
    fillBody(
      "accounts-table",
      page.accounts.length
        ? page.accounts.map(accountRow)
        : [emptyRow(6, "No accounts yet.")],
    );
    state.nextAccountCursor = page.next_cursor;
    $("accounts-next").disabled = !page.next_cursor;
    $("accounts-prev").disabled = state.accountCursors.length === 1;
    $("accounts-page").textContent = `Page ${state.accountCursors.length}`;
    for (const th of document.querySelectorAll("#accounts-table th[data-sort]")) {
      const sorted = th.dataset.sort === state.sort;
      th.setAttribute("aria-sort", sorted ? (state.order === "asc" ? "ascending" : "descending") : "none");
    }
  }

  function accountRow(account) {
    const tr = document.createElement("tr");
    tr.dataset.accountId = account.account_id;
    const idCell = document.createElement("td");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link-button";
    open.textContent = account.account_id;
    open.setAttribute("aria-label", `Show account ${account.account_id}`);
    open.addEventListener("click", () => openDetail(account.account_id));
    idCell.append(open);
    tr.append(
      idCell,
      cell(account.owner, "wide-only"),
      cell(account.currency),
      moneyCell(account.balance),
      moneyCell(account.available, "wide-only"),
      cell(account.status),
    );
    return tr;
  }

  function sortBy(key) {
    if (state.sort === key) {
      state.order = state.order === "asc" ? "desc" : "asc";
    } else {
      state.sort = key;
      state.order = key === "balance" ? "desc" : "asc";
    }
    state.accountCursors = [null];
    return loadAccounts();
  }

  // --- one account -----------------------------------------------------------------------------

  async function openDetail(accountId) {
    state.detail = { id: accountId, beforeVersions: [null], stale: false };
    await loadDetail();
    $("account-detail").hidden = false;
    $("detail-title").focus();
  }

  async function loadDetail() {
    const detail = state.detail;
    if (!detail) return;
    const id = encodeURIComponent(detail.id);
    const before = detail.beforeVersions[detail.beforeVersions.length - 1];
    const [balance, page, recent] = await Promise.all([
      api(`/accounts/${id}/balance`),
      api(query(`/accounts/${id}/statement`, { limit: PAGE_SIZE, before_version: before })),
      api(query(`/accounts/${id}/statement`, { limit: CHART_ENTRIES })),
    ]);
    if (state.detail !== detail) return; // another account was opened meanwhile
    // The statements projection may trail the balances one; look again on the next tick.
    const newest = recent.entries.length ? recent.entries[0].version : 0;
    detail.stale = newest < balance.version;
    detail.nextBefore = page.next_before_version;

    $("detail-title").textContent = `Account ${balance.account_id} (${balance.currency})`;
    setMoney("detail-balance", balance.balance);
    setMoney("detail-available", balance.available);
    setMoney("detail-held", balance.held || "0.00");
    setMoney("detail-overdraft", balance.overdraft_limit);
    $("detail-owner").textContent = balance.owner;
    $("detail-status").textContent = balance.status;
    fillBody(
      "statement-table",
      page.entries.length ? page.entries.map(statementRow) : [emptyRow(6, "No entries.")],
    );
    $("statement-newer").disabled = detail.beforeVersions.length === 1;
    $("statement-older").disabled = !page.next_before_version;
    drawChart(recent.entries.slice().reverse());
  }

  const ENTRY_NAMES = {
    AccountOpened: "Opened",
    MoneyDeposited: "Deposit",
    MoneyWithdrawn: "Withdrawal",
    TransferSent: "Transfer out",
    TransferReceived: "Transfer in",
    OverdraftLimitSet: "Overdraft limit set",
    AccountClosed: "Closed",
    HoldPlaced: "Hold placed",
    HoldCaptured: "Hold captured",
    HoldVoided: "Hold voided",
    HoldExpired: "Hold expired",
  };

  function entryText(entry) {
    // Who and why, in words: the other account, the hold and what it held or released, the
    // transfer a reversal undoes, then the client's reference.
    let who = "";
    if (entry.hold_amount !== null && entry.hold_amount !== undefined) {
      const what = entry.type === "HoldPlaced" ? "held" : "released";
      who = `hold ${entry.transfer_id} with ${entry.counterparty}, ${entry.hold_amount} ${what}`;
    } else if (entry.counterparty) {
      const arrow = entry.type === "TransferSent" ? "to" : "from";
      const undoing = entry.reversal_of ? ` (reverses ${entry.reversal_of})` : "";
      who = `${arrow} ${entry.counterparty}${undoing}`;
    }
    return [who, entry.reference].filter(Boolean).join(": ");
  }

  function statementRow(entry) {
    const tr = document.createElement("tr");
    const reference = entryText(entry);
    tr.append(
      cell(entry.version, "num wide-only"),
      cell(ENTRY_NAMES[entry.type] || entry.type),
      moneyCell(entry.amount),
      moneyCell(entry.balance_after),
      cell(reference || "–"),
      timeCell(entry.recorded_at),
    );
    return tr;
  }

  // --- the balance chart (SVG drawn here; the statement table says the same in words) ---------

  function cents(text) {
    // "-1234.50" -> -123450, exactly, without going through a float.
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = text.replace("-", "").split(".");
    const value = Number(whole) * 100 + Number(`${fraction}00`.slice(0, 2));
    return negative ? -value : value;
  }

  function drawChart(entries) {
    const box = $("balance-chart");
    const width = 600;
    const height = 160;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    if (entries.length === 0) {
      svg.setAttribute("aria-label", "No balance history yet.");
      box.replaceChildren(svg);
      $("chart-caption").textContent = "No balance history yet.";
      return;
    }
    const values = entries.map((e) => cents(e.balance_after));
    const low = Math.min(0, ...values);
    const high = Math.max(0, ...values);
    const span = high - low || 1;
    const pad = 8;
    const x = (i) =>
      entries.length === 1 ? width / 2 : pad + (i / (entries.length - 1)) * (width - 2 * pad);
    const y = (v) => pad + (1 - (v - low) / span) * (height - 2 * pad);
    const zero = document.createElementNS(SVG, "line");
    zero.setAttribute("class", "zero");
    zero.setAttribute("x1", "0");
    zero.setAttribute("x2", String(width));
    zero.setAttribute("y1", String(y(0)));
    zero.setAttribute("y2", String(y(0)));
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    const lowest = entries[values.indexOf(Math.min(...values))].balance_after;
    const highest = entries[values.indexOf(Math.max(...values))].balance_after;
    const first = entries[0];
    const last = entries[entries.length - 1];
    const words =
      `Balance after each of the last ${entries.length} entries (versions ${first.version} to ` +
      `${last.version}): from ${first.balance_after} to ${last.balance_after}; ` +
      `lowest ${lowest}, highest ${highest}.`;
    svg.setAttribute("aria-label", words);
    svg.append(zero, line);
    box.replaceChildren(svg);
    $("chart-caption").textContent = words;
  }

  // --- live updates ----------------------------------------------------------------------------

  function markUpdated() {
    $("live-status").textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, POLL_MS);
  }

  async function tick() {
    if (!state.token) return;
    if (document.hidden) {
      schedule(); // a background tab costs nothing
      return;
    }
    try {
      const summary = await api("/summary");
      const text = JSON.stringify(summary);
      const changed = text !== state.lastSummary;
      if (changed) {
        state.lastSummary = text;
        renderSummary(summary);
      }
      const advanced = await loadProjections();
      const work = [];
      if (changed || advanced) work.push(loadAccounts());
      if (state.detail && (changed || advanced || state.detail.stale)) work.push(loadDetail());
      await Promise.all(work);
      showProblem("");
      if (changed || advanced) markUpdated();
    } catch (error) {
      if (error.status === 401) {
        signOut("Your API key is no longer accepted (revoked?). Sign in again.");
        return;
      }
      showProblem(`Live updates paused: ${error.message}. Retrying…`);
    }
    schedule();
  }

  // --- wiring ----------------------------------------------------------------------------------

  function guarded(action) {
    return () =>
      action().catch((error) => {
        if (error.status === 401) signOut("Your API key is no longer accepted. Sign in again.");
        else showProblem(`${error.code}: ${error.message}`);
      });
  }

  function start() {
    $("sign-in-form").addEventListener("submit", onSignIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    for (const button of document.querySelectorAll("#accounts-table button[data-sort]")) {
      button.addEventListener("click", guarded(() => sortBy(button.dataset.sort)));
    }
    $("accounts-next").addEventListener(
      "click",
      guarded(() => {
        state.accountCursors.push(state.nextAccountCursor);
        return loadAccounts();
      }),
    );
    $("accounts-prev").addEventListener(
      "click",
      guarded(() => {
        if (state.accountCursors.length > 1) state.accountCursors.pop();
        return loadAccounts();
      }),
    );
    $("statement-older").addEventListener(
      "click",
      guarded(() => {
        state.detail.beforeVersions.push(state.detail.nextBefore);
        return loadDetail();
      }),
    );
    $("statement-newer").addEventListener(
      "click",
      guarded(() => {
        if (state.detail.beforeVersions.length > 1) state.detail.beforeVersions.pop();
        return loadDetail();
      }),
    );
    $("detail-close").addEventListener("click", () => {
      state.detail = null;
      $("account-detail").hidden = true;
    });
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) {
      signIn(saved).catch((error) => signOut(explainRefusal(error)));
    } else {
      $("api-key").focus();
    }
  }

  start();
})();
