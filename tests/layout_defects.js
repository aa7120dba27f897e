// Layout defects of the page in view, one readable line each (tests/test_web_browser.py).
() => {
  const W = document.documentElement.clientWidth, H = window.innerHeight, out = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/ +/).join(".") : "");
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > W + 1 && !scrolls(el)) out.push(`${name(el)} reaches ${Math.round(r.right)} px of ${W}`);
    const cs = getComputedStyle(el);
    if (cs.textOverflow === "ellipsis" && el.scrollWidth > el.clientWidth) out.push(`${name(el)} is cut with an ellipsis`);
    if (el.matches("table.data th, table.data td") && r.right > W + 1) out.push(`${name(el)} of ${name(el.closest("table"))} is off-screen`);
    if (el.matches("iframe.report") && r.height > H) out.push(`${name(el)} is ${Math.round(r.height)} px tall on a ${H} px screen`);
  }
  const ctx = document.createElement("canvas").getContext("2d");
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest("script, style, select, option, textarea") || !el.getClientRects().length) continue;
    let box = el;
    while (box.parentElement && getComputedStyle(box).display.startsWith("inline")) box = box.parentElement;
    const bs = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(bs.paddingLeft) - parseFloat(bs.paddingRight);
    const cs = getComputedStyle(el);
    // In a box that scrolls sideways a long word overflows unharmed, unless the box breaks it.
    const breaks = ["anywhere", "break-word"].includes(cs.overflowWrap) || cs.wordBreak === "break-all";
    if (room <= 0 || (scrolls(box) && !breaks)) continue;
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    for (const word of n.textContent.split(/\s+/)) {
      const wide = word ? ctx.measureText(word).width : 0;
      if (wide > room + 1) out.push(`"${word}" (${Math.round(wide)} px) is cut in its ${name(box)} (${Math.round(room)} px)`);
    }
  }
  return [...new Set(out)];
}
