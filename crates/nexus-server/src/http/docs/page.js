(function () {
  "use strict";
  function copyText(text, button) {
    function done() {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("done");
      setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 1500);
    }
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      document.body.removeChild(area);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  // A copy button on every command of the document.
  document.querySelectorAll(".doc pre").forEach(function (pre) {
    var code = pre.querySelector("code") || pre;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy this command");
    button.addEventListener("click", function () { copyText(code.textContent.replace(/\n$/, ""), button); });
    pre.classList.add("has-copy");
    pre.appendChild(button);
  });
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (source) { copyText(source.textContent.trim(), button); }
    });
  });

  // The pairing code: live state and countdown.
  var pair = document.getElementById("pair");
  if (!pair) { return; }
  var badge = document.getElementById("state");
  var note = document.getElementById("state-note");
  var countdown = document.getElementById("countdown");
  var notes = {
    pending: "Waiting for an agent to claim it.",
    claimed: "Claimed: the invited agent has joined the session. The code cannot be used again.",
    expired: "Expired: nobody claimed it in time. Ask for a new link.",
    unknown: "This relay does not know this code. Ask for a new link."
  };
  var hints = {
    claimed: "The agents are connected. If an agent still needs to join, ask for a new link.",
    expired: "Ask whoever sent you this link for a new one.",
    unknown: "Ask whoever sent you this link for a new one."
  };
  var state = pair.getAttribute("data-state");
  var statusUrl = pair.getAttribute("data-status");
  var expires = parseInt(pair.getAttribute("data-expires") || "", 10);
  var serverNow = parseInt(pair.getAttribute("data-now") || "", 10);
  var loadedAt = Date.now();
  var timer = null;
  var ticker = null;

  function setState(next) {
    if (!notes[next]) { return; }
    state = next;
    pair.setAttribute("data-state", next);
    badge.setAttribute("data-state", next);
    badge.textContent = next;
    note.textContent = notes[next];
    if (next !== "pending") {
      if (timer) { clearInterval(timer); timer = null; }
      if (ticker) { clearInterval(ticker); ticker = null; }
      countdown.textContent = "";
      var hint = document.getElementById("hint");
      if (hint) { hint.textContent = hints[next]; }
    }
  }

  function refresh() {
    if (state !== "pending") { return; }
    fetch(statusUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (res.status === 404) { return { state: "expired" }; }
        return res.ok ? res.json() : null;
      })
      .then(function (body) { if (body && body.state) { setState(body.state); } })
      .catch(function () { /* offline for a moment: try again at the next tick */ });
  }

  function tick() {
    if (isNaN(expires) || isNaN(serverNow)) { return; }
    var left = Math.max(0, Math.round((expires - serverNow - (Date.now() - loadedAt)) / 1000));
    var minutes = Math.floor(left / 60);
    var seconds = left % 60;
    countdown.textContent = left > 0
      ? "Expires in " + minutes + ":" + (seconds < 10 ? "0" : "") + seconds
      : "Expiring now";
    if (left === 0) { refresh(); }
  }

  setState(state);
  if (state === "pending") {
    tick();
    ticker = setInterval(tick, 1000);
    timer = setInterval(refresh, 2000);
    refresh();
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { refresh(); }
    });
  }
})();
