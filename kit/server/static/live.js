// Live leaderboard: polls /api/leaderboard and rebuilds the table when it changes.
// Text goes in with textContent only: names and descriptions are never parsed as HTML.
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.fetch) { return; }
  var decimals = parseInt(board.dataset.decimals, 10) || 5;
  var every = parseInt(board.dataset.refresh, 10) || 10000;
  var version = board.dataset.version;
  var top = parseInt(board.dataset.top, 10) || 0;  // the classroom screen shows the first rows only
  var numeric = { "#": 1, "public": 1, "private": 1, "public #": 1, "entries": 1 };
  document.getElementById("live").hidden = false;

  function score(value) { return value === null || value === undefined ? "-" : Number(value).toFixed(decimals); }
  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "-"; }

  function cells(row, revealed) {
    var out = [String(row.rank), row.participant];
    if (revealed) {
      var move = row.public_rank - row.rank;
      out.push(score(row["private"]), score(row["public"]),
        String(row.public_rank) + (move ? " (" + (move > 0 ? "+" : "") + move + ")" : ""));
    } else {
      out.push(score(row["public"]));
    }
    out.push(String(row.entries), row.model || "-", when(row.best_submitted_at));
    if (revealed) { out.push(row.basis || "-"); }
    return out;
  }

  function header(revealed) {
    var titles = ["#", "participant"].concat(revealed ? ["private", "public", "public #"] : ["public"]);
    titles = titles.concat(["entries", "model", "submitted (UTC)"]);
    return revealed ? titles.concat(["ranked on"]) : titles;
  }

  function row(titles, values) {
    var tr = document.createElement("tr");
    if (values[0] === "1" || values[0] === "2" || values[0] === "3") { tr.className = "top" + values[0]; }
    values.forEach(function (text, i) {
      var td = document.createElement("td");
      if (numeric[titles[i]]) { td.className = "num"; }
      td.textContent = text;
      tr.appendChild(td);
    });
    return tr;
  }

  function render(data) {
    var tag = data.submissions + "-" + (data.revealed ? 1 : 0) + "-" + data.state;
    if (tag === version) { return; }
    version = tag;
    // The state may have changed too (closed, revealed): the headings follow it.
    document.title = data.title;
    document.getElementById("title").textContent = data.title;
    document.getElementById("subtitle").textContent = data.subtitle + ".";
    var titles = header(data.revealed);
    var head = board.querySelector("thead tr");
    while (head.firstChild) { head.removeChild(head.firstChild); }
    titles.forEach(function (t) {
      var th = document.createElement("th");
      if (numeric[t]) { th.className = "num"; }
      th.textContent = t;
      head.appendChild(th);
    });
    var body = document.getElementById("rows");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    (top ? data.rows.slice(0, top) : data.rows).forEach(function (r) {
      body.appendChild(row(titles, cells(r, data.revealed)));
    });
    if (data.rows.length) {
      document.getElementById("summary").textContent = data.rows.length + " participant(s), " +
        data.submissions + " scored submission(s).";
    }
    var plots = document.getElementById("plots");
    plots.hidden = data.rows.length === 0 || top > 0;
    if (!plots.hidden) {  // an empty board (or the classroom screen) loads no plots
      ["history", "bins"].forEach(function (name) {
        document.getElementById("plot-" + name).src = "/plots/" + name + ".png?v=" + encodeURIComponent(tag);
      });
    }
  }

  function poll() {
    fetch("/api/leaderboard", { cache: "no-store", credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { render(data); } })
      .catch(function () { /* the server may be restarting: try again next time */ })
      .then(function () { window.setTimeout(poll, every); });
  }
  window.setTimeout(poll, every);
}());
