// labelvault dashboard: draws the overview's activity chart as SVG from the page's JSON data island
// (<script type="application/json" id="chart-data">). No library, no network; without JavaScript the page's
// table shows the same numbers.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (value <= 4) return 4;
    var step = Math.pow(10, Math.floor(Math.log10(value)));
    var candidates = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < candidates.length; i++) {
      if (candidates[i] * step * 4 >= value) return candidates[i] * step * 4;
    }
    return Math.ceil(value / step) * step;
  }

  function draw(target, data) {
    var width = 900, height = 260, left = 44, right = 12, top = 12, bottom = 34;
    var days = data.days, series = data.series;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { max = Math.max(max, v); }); });
    max = niceMax(max);
    var plotW = width - left - right, plotH = height - top - bottom;
    var groupW = plotW / days.length, barW = Math.max(3, (groupW * 0.72) / series.length);
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, preserveAspectRatio: "none", "aria-hidden": "true" });

    for (var t = 0; t <= 4; t++) {
      var y = top + plotH - (plotH * t) / 4;
      svg.appendChild(el("line", { x1: left, x2: width - right, y1: y, y2: y, "class": t ? "grid" : "axis" }));
      svg.appendChild(el("text", { x: left - 8, y: y + 4, "text-anchor": "end", "class": "tick" }, String((max * t) / 4)));
    }
    days.forEach(function (day, i) {
      var x0 = left + i * groupW + (groupW - barW * series.length) / 2;
      series.forEach(function (s, j) {
        var v = s.values[i], h = (plotH * v) / max;
        var bar = el("rect", { x: x0 + j * barW, y: top + plotH - h, width: barW - 1, height: h, rx: 1.5, "class": "bar-" + s.key });
        bar.appendChild(el("title", {}, day + " · " + s.label + ": " + v));
        svg.appendChild(bar);
      });
      if (days.length <= 16 || i % 2 === 0) {
        svg.appendChild(el("text", { x: left + i * groupW + groupW / 2, y: height - 12, "text-anchor": "middle", "class": "tick" }, day.slice(5)));
      }
    });
    target.textContent = "";
    target.appendChild(svg);
    var legend = document.createElement("div");
    legend.className = "chart-legend";
    series.forEach(function (s) {
      var item = document.createElement("span");
      item.className = "key-" + s.key;
      item.textContent = s.label;
      legend.appendChild(item);
    });
    target.appendChild(legend);
  }

  function init() {
    var island = document.getElementById("chart-data");
    var target = document.getElementById("activity-chart");
    if (!island || !target) return;
    try {
      draw(target, JSON.parse(island.textContent));
    } catch (e) {
      target.textContent = "";
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
