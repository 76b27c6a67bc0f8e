// Run page: poll the run while it is queued or running; draw the plotly charts once it has a report.
(function () {
  "use strict";
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    if (!window.Plotly) return;
    var fig = JSON.parse(document.getElementById(el.dataset.chart).textContent);
    window.Plotly.newPlot(el, fig.data, fig.layout, { displayModeBar: false, responsive: true });
  });

  var box = document.getElementById("progress");
  if (!box || box.dataset.active !== "1") return;
  var q = function (sel) { return document.querySelector(sel); };
  var logEl = q("[data-log]");

  function render(s) {
    q("[data-stage]").textContent = s.stage || "waiting for a worker";
    var known = s.active && s.progress > 0;
    q("[data-percent]").textContent = known ? Math.round(s.progress * 100) + "%" : "";
    q("[data-bar]").style.width = (known ? s.progress * 100 : 100) + "%";
    q("[data-bar]").parentNode.classList.toggle("busy", s.active && !known);
    document.querySelectorAll("[data-status]").forEach(function (el) {
      el.className = "status " + s.status;
      el.textContent = s.status.charAt(0).toUpperCase() + s.status.slice(1);
    });
    var stages = q("[data-stages]");
    stages.innerHTML = "";
    (s.timeline || []).forEach(function (st) {
      var li = document.createElement("li");
      li.textContent = st[0] + " ";
      var t = document.createElement("span");
      t.className = "muted";
      t.textContent = Number(st[1]).toFixed(1) + " s";
      li.appendChild(t);
      stages.appendChild(li);
    });
    var atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 20;
    logEl.textContent = s.log_tail;
    if (atBottom) logEl.scrollTop = logEl.scrollHeight;
    var err = q("[data-error]");
    err.hidden = !s.error;
    err.textContent = s.error;
  }

  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        render(s);
        if (s.active) setTimeout(poll, 1500);
        else window.location.reload();  // the finished page has the report, charts and downloads
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
