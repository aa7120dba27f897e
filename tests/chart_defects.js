// Defects of the plotly charts on the page in view, one readable line each
// (tests/test_web_browser.py): a legend entry whose trace draws nothing; a tick label, axis
// title, legend entry or chart title that overlaps another or runs past the chart's edge; a
// tick written with an SI prefix (200μ, 1.2k) instead of a number.
() => {
  const out = [];
  const finite = (v) => v !== null && v !== undefined && v !== "" && Number.isFinite(+v);
  for (const gd of document.querySelectorAll(".js-plotly-plot")) {
    const chart = gd.id || "a chart";
    for (const tr of gd._fullData || []) {
      if (!tr.showlegend || tr.visible !== true || gd._fullLayout.showlegend === false) continue;
      const values = tr.orientation === "h" ? tr.x : tr.y;
      const n = Array.from(values || []).filter(finite).length;
      // A line needs two points; a lone marker at a line's legend entry is hidden easily.
      const dots = tr.type !== "scatter" || !/lines/.test(tr.mode || "") || tr.fill !== "none";
      if (n < (dots ? 1 : 2)) out.push(`${chart}: the legend names "${tr.name}" but it draws nothing`);
    }
    const svg = gd.querySelector(".main-svg").getBoundingClientRect();
    const labels = [];
    for (const el of gd.querySelectorAll(".main-svg text, .infolayer text")) {
      if (el.closest(".hoverlayer, .modebar") || getComputedStyle(el).display === "none") continue;
      const r = el.getBoundingClientRect(), words = el.textContent.trim();
      if (!words || r.width === 0 || r.height === 0) continue;
      const tick = /tick$/.test(el.parentElement.getAttribute("class") || "");
      if (tick && /^[-−]?[\d.,]+\s?[yzafpnμumkMGTPEZY]$/.test(words)) out.push(`${chart}: the tick "${words}" has an SI prefix`);
      if (r.left < svg.left - 1 || r.right > svg.right + 1 || r.top < svg.top - 1 || r.bottom > svg.bottom + 1) {
        out.push(`${chart}: "${words}" runs past the chart's edge`);
      }
      labels.push({ words, r, tick: tick && el.parentElement.getAttribute("class") });
    }
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) {
        // Ticks of two axes meet at the corner by design; any other pair must not touch.
        if (labels[i].tick && labels[j].tick && labels[i].tick !== labels[j].tick) continue;
        const a = labels[i].r, b = labels[j].r;
        const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (x > 2 && y > 2) out.push(`${chart}: "${labels[i].words}" overlaps "${labels[j].words}"`);
      }
    }
    for (const el of gd.querySelectorAll(".textpoint text")) {
      const r = el.getBoundingClientRect(), plot = gd.querySelector(".nsewdrag").getBoundingClientRect();
      if (r.left < plot.left - 1 || r.right > plot.right + 1) out.push(`${chart}: the label "${el.textContent}" is clipped`);
    }
  }
  return [...new Set(out)];
}
