// The page's own script: tabs, pickers, the details of a clicked element, zoom and pan of graph drawings,
// sortable tables, and the plotly charts. Everything it shows comes from the JSON block #stepwise-data.
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("stepwise-data").textContent);
  const details = document.getElementById("details");
  const drawn = new Set();

  function esc(value) {
    return String(value === null || value === undefined ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return esc(value);
    return Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
  }
  function rows(pairs) {
    return "<table class=\"compact\"><tbody>" + pairs.map(function (p) {
      return "<tr><th>" + esc(p[0]) + "</th><td>" + p[1] + "</td></tr>";
    }).join("") + "</tbody></table>";
  }
  function table(header, body) {
    return "<table class=\"compact\"><thead><tr>" + header.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("") +
      "</tr></thead><tbody>" + body.map(function (r) {
        return "<tr>" + r.map(function (c) { return "<td>" + c + "</td>"; }).join("") + "</tr>";
      }).join("") + "</tbody></table>";
  }
  function bars(items) { // [label, value in [0, 1]] as horizontal bars
    return "<div class=\"bars\">" + items.map(function (b) {
      return "<div class=\"bar-row\"><span class=\"bar-label\">" + esc(b[0]) + "</span><span class=\"bar\" style=\"width:" +
        (100 * Math.max(0, Math.min(1, b[1]))).toFixed(1) + "%\"></span><span class=\"bar-value\">" + num(b[1]) + "</span></div>";
    }).join("") + "</div>";
  }
  function show(html) { details.innerHTML = html; details.scrollTop = 0; }

  // ------------------------------------------------------------------ tabs and pickers
  function activate(name) {
    document.querySelectorAll("[data-tab]").forEach(function (tab) { tab.classList.toggle("active", tab.dataset.tab === name); });
    document.querySelectorAll("[data-panel]").forEach(function (panel) { panel.hidden = panel.dataset.panel !== name; });
    drawPlots(name);
  }
  document.querySelectorAll("[data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () { activate(tab.dataset.tab); });
  });
  document.querySelectorAll("select[data-select]").forEach(function (select) {
    select.addEventListener("change", function () {
      const name = select.dataset.select;
      document.querySelectorAll(".choice[data-choice=\"" + name + "\"]").forEach(function (block) {
        block.hidden = block.dataset.value !== select.value;
      });
      if (name === "paths-class") drawSankey(select.value);
    });
  });

  // ------------------------------------------------------------------ plots
  let loaded = false;
  function needPlotly() { // plotly's code is inlined as text: run it when the first chart is drawn
    if (window.Plotly) return;
    const code = document.createElement("script");
    code.textContent = document.getElementById("plotly-js").textContent;
    document.head.appendChild(code);
  }
  function drawPlots(name) {
    if (!loaded || drawn.has(name)) return;
    drawn.add(name);
    needPlotly();
    if (name === "dependency" && DATA.dependency && DATA.dependency.clusters) {
      const c = DATA.dependency.clusters;
      const labels = c.graphs.map(function (g, i) { return c.flat ? g + " (cluster " + c.flat[i] + ")" : g; });
      Plotly.newPlot("dependency-clustermap", [{ type: "heatmap", z: c.values, x: c.nodes, y: labels,
        colorscale: [[0, "#f4f4f4"], [1, "#b2182b"]], showscale: false,
        hovertemplate: "%{y}<br>%{x}: %{z}<extra></extra>" }],
        { height: 140 + 26 * labels.length, margin: { l: 170, r: 10, t: 10, b: 110 }, xaxis: { tickangle: -60, tickfont: { size: 9 } },
          yaxis: { autorange: "reversed" } }, { responsive: true, displaylogo: false });
    }
    if (name === "paths" && DATA.paths) drawSankey("all");
  }
  function drawSankey(value) {
    needPlotly();
    const figure = DATA.paths.figures[value];
    Plotly.react("paths-sankey", figure.data, figure.layout, { responsive: true, displaylogo: false });
  }

  // ------------------------------------------------------------------ details of a clicked element
  function graphDetails(view, gid, key) {
    const graph = DATA[view].graphs[gid];
    const node = graph.nodes[key];
    const incoming = graph.edges.filter(function (e) { return e.target === key; });
    const outgoing = graph.edges.filter(function (e) { return e.source === key; });
    const metricNames = view === "dependency" ? ["count", "frequency", "relevance"] :
      (view === "inference" ? ["count", "frequency", "log_ratio"] : ["count", "frequency"]);
    const edgeTable = function (edges, end) {
      return table(["neuron"].concat(metricNames.map(function (m) { return m === "relevance" ? "mean ω" : m; })),
        edges.map(function (e) { return ["<code>" + esc(e[end]) + "</code>"].concat(metricNames.map(function (m) { return num(e[m]); })); }));
    };
    let html = "<h3 class=\"key\">" + esc(key) + "</h3><p>" + esc(graph.label) + "</p>";
    const pairs = [["level", esc(node.level)], ["index", num(node.index)], ["depth", num(node.depth)]];
    Object.keys(node).forEach(function (k) {
      if (["level", "index", "depth", "id"].indexOf(k) < 0) pairs.push([k, num(node[k])]);
    });
    if (graph.metrics && graph.metrics[key]) {
      const m = graph.metrics[key];
      pairs.push(["relevance (mean ω)", num(m.relevance)], ["frequency", num(m.frequency)], ["interconnectedness", num(m.interconnectedness)]);
    }
    html += rows(pairs);
    if (view === "inference") html += patches(gid, key);
    html += "<h4>Edges from above (" + incoming.length + ")</h4>" + edgeTable(incoming, "source");
    html += "<h4>Edges below (" + outgoing.length + ")</h4>" + edgeTable(outgoing, "target");
    if (view === "dependency" && outgoing.length) {
      html += "<h4>Outlier frequency of its children</h4>" + bars(outgoing.map(function (e) { return [e.target, e.frequency]; }));
    }
    return html;
  }
  function patches(gid, key) {
    const reps = (DATA.inference.representatives[gid] || {})[key] || [];
    if (!reps.length) return "";
    return "<h4>Representative patches</h4><div class=\"patches\">" + reps.map(function (r) {
      const image = DATA.inference.images[String(r[0])];
      const text = (DATA.inference.texts || {})[String(r[0])];
      if (!image && text) {
        return "<span class=\"sentence\" title=\"input " + esc(r[0]) + "\">" + text.map(function (token, i) {
          if (token === null) return null; // padding
          return i === r[2] ? "<mark>" + esc(token) + "</mark>" : esc(token);
        }).filter(function (t) { return t !== null; }).join(" ") + "</span>";
      }
      if (!image) return "<span class=\"patch\">input " + esc(r[0]) + (r[2] === null ? "" : ", token " + esc(r[2])) + "</span>";
      let box = "";
      if (r[1]) {
        const t = r[1][0], l = r[1][1], b = r[1][2], ri = r[1][3];
        box = "<span class=\"box\" style=\"top:" + (100 * t / image.height) + "%;left:" + (100 * l / image.width) + "%;height:" +
          (100 * (b - t) / image.height) + "%;width:" + (100 * (ri - l) / image.width) + "%\"></span>";
      }
      return "<span class=\"patch\" title=\"input " + esc(r[0]) + "\"><img alt=\"input " + esc(r[0]) + "\" src=\"" + image.src + "\">" + box + "</span>";
    }).join("") + "</div>";
  }
  function perturbationDetails(input, key) {
    const entry = DATA.perturbation.inputs[input];
    const row = entry.rows[key];
    return "<h3 class=\"key\">" + esc(key) + "</h3><p>input " + esc(input) + ", target " + esc(entry.target) + "</p>" +
      rows(DATA.perturbation.columns.map(function (c) { return [c, num(row[c])]; }));
  }
  function pathsDetails(key) {
    const graph = DATA.paths.graph;
    const node = graph.nodes[key];
    const classes = Object.keys(node).filter(function (k) { return k.indexOf("class_") === 0; });
    const size = node.size || 1;
    let html = "<h3 class=\"key\">" + esc(key) + "</h3>" + rows([["level", esc(node.level)], ["cluster", num(node.index)], ["size", num(node.size)]]);
    html += "<h4>Classes</h4>" + bars(classes.filter(function (c) { return node[c] > 0; }).map(function (c) {
      return [c.replace("class_", "class "), node[c] / size];
    }));
    ["target", "source"].forEach(function (end) {
      const edges = graph.edges.filter(function (e) { return e[end === "target" ? "source" : "target"] === key; });
      html += "<h4>" + (end === "target" ? "Flows to the column below" : "Flows from the column above") + "</h4>" +
        table(["cluster", "count", "frequency"], edges.map(function (e) { return ["<code>" + esc(e[end]) + "</code>", num(e.count), num(e.frequency)]; }));
    });
    return html;
  }
  function sorterDetails(level, key) {
    const neuron = DATA.sorter.levels[level][key];
    let html = "<h3 class=\"key\">" + esc(key) + "</h3>" + rows([["level", esc(level)], ["neuron", num(neuron.neuron)],
      ["kind", esc(neuron.kind)], ["evidence", esc(neuron.evidence)]]) + "<div id=\"neuron-view\" class=\"plot\"></div><h4>Inputs per bin, largest value first</h4>";
    for (let b = neuron.members.length - 1; b >= 0; b--) {
      const members = neuron.members[b];
      if (!members.length) continue;
      html += "<div class=\"bin\"><span class=\"bin-label\">bin " + b + " [" + num(neuron.edges[b]) + ", " + num(neuron.edges[b + 1]) + (b === neuron.members.length - 1 ? "]" : ")") + ": " +
        neuron.sizes[b] + " inputs</span>" + members.map(function (input) {
          const src = DATA.sorter.images[String(input)];
          const known = DATA.sorter.inputs[String(input)];
          const label = known[1] >= 0 ? known[0] + "→" + known[1] : String(known[0]); // label→prediction
          const wrong = known[1] >= 0 && known[1] !== known[0] ? " wrong" : "";
          return "<span class=\"thumb" + wrong + "\" title=\"input " + esc(input) + ": " + esc(label) + "\">" +
            (src ? "<img alt=\"input " + esc(input) + "\" src=\"" + src + "\">" : esc(input)) + "<small>" + esc(label) + "</small></span>";
        }).join("") + "</div>";
    }
    return html;
  }
  function drawNeuronView(level, key) {
    needPlotly();
    const neuron = DATA.sorter.levels[level][key];
    const centres = neuron.counts.map(function (_, b) {
      const e = neuron.edges; return e.length > b + 1 ? (e[b] + e[b + 1]) / 2 : e[0];
    });
    const traces = DATA.sorter.classes.map(function (c, k) {
      return { type: "bar", name: "class " + c, x: centres, y: neuron.counts.map(function (row) { return row[k]; }),
        marker: { color: DATA.sorter.colours[k] } };
    });
    Plotly.newPlot("neuron-view", traces, { barmode: "stack", height: 260, margin: { l: 40, r: 10, t: 10, b: 40 },
      xaxis: { title: { text: "value" } }, yaxis: { title: { text: "inputs" } }, legend: { font: { size: 9 } } },
      { displaylogo: false, responsive: true });
  }

  document.addEventListener("click", function (event) {
    const element = event.target.closest("[data-key]");
    if (!element) return;
    const panel = element.closest("[data-panel]");
    if (!panel) return;
    const view = panel.dataset.panel;
    const key = element.dataset.key;
    const choice = element.closest(".choice");
    document.querySelectorAll("[data-key].selected").forEach(function (e) { e.classList.remove("selected"); });
    const scope = element.closest("[data-graph]") || choice || panel; // the same neuron in a table and a drawing
    scope.querySelectorAll("[data-key=\"" + CSS.escape(key) + "\"]").forEach(function (e) { e.classList.add("selected"); });
    if (view === "dependency" || view === "inference") {
      show(graphDetails(view, element.closest("[data-graph]").dataset.graph, key));
    } else if (view === "perturbation") {
      show(perturbationDetails(choice.dataset.value, key));
    } else if (view === "paths") {
      show(pathsDetails(key));
    } else if (view === "sorter") {
      show(sorterDetails(choice.dataset.value, key));
      drawNeuronView(choice.dataset.value, key);
    }
  });
  document.addEventListener("keydown", function (event) {
    if ((event.key === "Enter" || event.key === " ") && event.target.matches("[data-key]")) { // SVG has no click()
      event.preventDefault();
      event.target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    }
  });

  // ------------------------------------------------------------------ zoom and pan of graph drawings
  document.querySelectorAll(".zoomable svg").forEach(function (svg) {
    const start = svg.getAttribute("viewBox").split(" ").map(Number);
    let box = start.slice(), drag = null;
    const set = function () { svg.setAttribute("viewBox", box.join(" ")); };
    svg.addEventListener("wheel", function (event) {
      event.preventDefault();
      const rect = svg.getBoundingClientRect();
      const fx = (event.clientX - rect.left) / rect.width, fy = (event.clientY - rect.top) / rect.height;
      const scale = event.deltaY > 0 ? 1.15 : 1 / 1.15;
      const w = box[2] * scale, h = box[3] * scale;
      box = [box[0] + (box[2] - w) * fx, box[1] + (box[3] - h) * fy, w, h];
      set();
    }, { passive: false });
    svg.addEventListener("mousedown", function (event) { drag = [event.clientX, event.clientY, box[0], box[1]]; });
    window.addEventListener("mousemove", function (event) {
      if (!drag) return;
      const rect = svg.getBoundingClientRect();
      box[0] = drag[2] - (event.clientX - drag[0]) * box[2] / rect.width;
      box[1] = drag[3] - (event.clientY - drag[1]) * box[3] / rect.height;
      set();
    });
    window.addEventListener("mouseup", function () { drag = null; });
    svg.addEventListener("dblclick", function () { box = start.slice(); set(); });
  });

  // ------------------------------------------------------------------ sortable tables
  document.querySelectorAll("table.sortable").forEach(function (tableElement) {
    tableElement.querySelectorAll("thead th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        const body = tableElement.tBodies[0];
        const list = Array.from(body.rows);
        const ascending = th.dataset.order !== "ascending";
        tableElement.querySelectorAll("thead th").forEach(function (h) { delete h.dataset.order; });
        th.dataset.order = ascending ? "ascending" : "descending";
        const value = function (row) { return row.cells[column].textContent; };
        const numeric = list.every(function (row) { const v = value(row); return v === "" || !isNaN(Number(v)); });
        list.sort(function (a, b) {
          let x = value(a), y = value(b);
          if (numeric) {
            if (x === "" || y === "") return (x === "") - (y === ""); // empty cells last
            x = Number(x); y = Number(y);
          }
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        });
        list.forEach(function (row) { body.appendChild(row); });
      });
    });
  });

  activate(DATA.views[0]);
  window.addEventListener("load", function () { // the charts of the first tab once the page is up
    setTimeout(function () {
      loaded = true;
      const current = document.querySelector("[data-tab].active");
      drawPlots(current ? current.dataset.tab : DATA.views[0]);
    }, 0);
  });
})();
