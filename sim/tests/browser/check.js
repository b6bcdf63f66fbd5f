// Measures an olsim HTML page as laid out by the browser and writes a JSON verdict into
// <pre id="olsim-verdict">: {"charts": n, "tables": n, "page_width": px, "viewport": px,
// "problems": [...]}. Injected by sim/tests/browser.rs; `OLSIM_INTEGER_AXES` (set before this
// script) lists the axis titles whose ticks must be whole numbers.
"use strict";
(function () {
  const SLACK = 0.5; // px of rounding tolerated in every comparison
  const problems = [];
  const integerAxes = window.OLSIM_INTEGER_AXES || [];
  const viewport = window.innerWidth;
  const page = document.documentElement.scrollWidth;
  const px = (v) => Math.round(v * 10) / 10;

  if (page > viewport + SLACK) {
    problems.push(`the page is ${page}px wide, wider than the ${viewport}px window`);
  }

  // The heading before an element, to name it in a problem.
  const heading = (el) => {
    for (let e = el; e; e = e.previousElementSibling || e.parentElement) {
      if (/^H[1-6]$/.test(e.tagName)) return e.textContent.trim();
    }
    return "(no heading)";
  };

  const tables = [...document.querySelectorAll("table")];
  tables.forEach((table) => {
    const right = table.getBoundingClientRect().right;
    if (right <= viewport + SLACK) return;
    // A wide table is fine inside a container of its own that scrolls and fits the window.
    const box = table.parentElement;
    const overflow = getComputedStyle(box).overflowX;
    const scrolls = (overflow === "auto" || overflow === "scroll") &&
      box.getBoundingClientRect().right <= viewport + SLACK;
    if (!scrolls) {
      problems.push(`table "${heading(table)}" ends at ${px(right)}px, past the ${viewport}px window`);
    }
  });

  const colour = (el, attr) => {
    const v = (el.getAttribute(attr) || "none").toUpperCase();
    return v === "NONE" || v === "#000000" || v === "#FFFFFF" ? null : v;
  };
  const inside = (a, b) =>
    a.left >= b.left - SLACK && a.right <= b.right + SLACK &&
    a.top >= b.top - SLACK && a.bottom <= b.bottom + SLACK;

  const svgs = [...document.querySelectorAll("svg")];
  svgs.forEach((svg, i) => {
    const caption = svg.closest("figure")?.querySelector("figcaption")?.textContent.trim();
    const name = `chart ${i + 1} ("${caption || heading(svg)}")`;
    const frame = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll("text")].map((el) => ({
      el,
      text: el.textContent.trim(),
      box: el.getBoundingClientRect(),
      anchor: el.getAttribute("text-anchor"),
      rotated: el.hasAttribute("transform"),
    }));

    // Text: none empty, all inside the chart, no two overlapping.
    texts.forEach((t, a) => {
      if (t.text === "") {
        problems.push(`${name}: an empty label at (${t.el.getAttribute("x")}, ${t.el.getAttribute("y")})`);
      }
      if (!inside(t.box, frame)) {
        problems.push(`${name}: text "${t.text}" lies outside its chart`);
      }
      for (const u of texts.slice(a + 1)) {
        const w = Math.min(t.box.right, u.box.right) - Math.max(t.box.left, u.box.left);
        const h = Math.min(t.box.bottom, u.box.bottom) - Math.max(t.box.top, u.box.top);
        if (w > SLACK && h > SLACK && t.text !== "" && u.text !== "") {
          problems.push(`${name}: labels "${t.text}" and "${u.text}" overlap`);
        }
      }
    });

    // Tick labels: a row of x labels shares its y, a column of y labels its x; none repeats.
    const axes = new Map();
    texts.filter((t) => !t.rotated).forEach((t) => {
      const key = t.anchor === "end" ? `y axis at x=${t.el.getAttribute("x")}`
        : t.anchor === "middle" ? `x axis at y=${t.el.getAttribute("y")}` : null;
      if (key) axes.set(key, [...(axes.get(key) || []), t.text]);
    });
    const ticks = [...axes].filter(([, labels]) => labels.length > 1);
    ticks.forEach(([axis, labels]) => {
      const repeated = labels.filter((l, k) => l !== "" && labels.indexOf(l) !== k);
      if (repeated.length) {
        problems.push(`${name}: tick label "${repeated[0]}" repeated on the ${axis} (${labels.join(", ")})`);
      }
    });
    ticks.forEach(([axis, labels]) => {
      const zero = labels.find((l) => /^-0(\.0*)?$/.test(l));
      if (zero) problems.push(`${name}: tick label "${zero}" (negative zero) on the ${axis}`);
    });
    const titles = texts.map((t) => t.text);
    const integer = integerAxes.find((a) => titles.includes(a));
    if (integer) {
      ticks.filter(([axis]) => axis.startsWith("x axis")).forEach(([, labels]) => {
        const bad = labels.filter((l) => !/^-?\d+$/.test(l));
        if (bad.length) {
          problems.push(`${name}: non-integer ticks ${bad.join(", ")} on the "${integer}" axis`);
        }
      });
    }

    // Data: coloured marks outside any legend box (the framed, unfilled rectangle).
    const legends = [...svg.querySelectorAll("rect")]
      .filter((r) => colour(r, "fill") === null && r.getAttribute("stroke") === "#000000")
      .map((r) => r.getBoundingClientRect());
    const marks = [...svg.querySelectorAll("circle, rect, polyline, path, line")].filter((el) => {
      if (colour(el, "fill") === null && colour(el, "stroke") === null) return false;
      const box = el.getBoundingClientRect();
      return !legends.some((l) => inside(box, l));
    });
    if (marks.length === 0) {
      problems.push(`${name}: no data drawn`);
    }
  });

  const out = document.createElement("pre");
  out.id = "olsim-verdict";
  out.textContent = JSON.stringify({
    charts: svgs.length,
    tables: tables.length,
    page_width: page,
    viewport,
    problems,
  });
  document.body.appendChild(out);
})();
