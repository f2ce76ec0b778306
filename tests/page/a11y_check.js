// The accessibility smoke check tests/page/test_browser.py runs in each page, offline.
// Returns a list of problems (empty when the page passes).
() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none";
  };
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.title.trim()) problems.push("no <title>");
  // Skip link: the first focusable element, pointing at an element that exists.
  const first = document.querySelector("a[href], button, input, select, textarea");
  if (!first || !first.classList.contains("skip")) problems.push("skip link is not first");
  else if (!document.querySelector(first.getAttribute("href"))) problems.push("skip target missing");
  // Headings: one h1, no level skipped going down.
  const hs = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")];
  if (hs.filter((h) => h.tagName === "H1").length !== 1) problems.push("not exactly one h1");
  let level = 0;
  for (const h of hs) {
    const n = Number(h.tagName[1]);
    if (n > level + 1) problems.push(`heading ${h.tagName} after h${level}: ${h.textContent}`);
    level = n;
  }
  // Every control has a label; every button a name.
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled ${el.tagName} ${el.name}`);
  }
  for (const b of document.querySelectorAll("button")) {
    if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("unnamed button");
  }
  // Graphics carry a text alternative.
  for (const svg of document.querySelectorAll("svg")) {
    const title = svg.querySelector(":scope > title");
    if (svg.getAttribute("aria-hidden") !== "true" &&
        (svg.getAttribute("role") !== "img" || !title || !title.textContent.trim())) {
      problems.push(`svg without role=img and title: ${svg.id}`);
    }
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("img without alt");
  }
  for (const f of document.querySelectorAll("iframe")) {
    if (!f.title) problems.push("iframe without title");
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) problems.push(`duplicate ids: ${dup}`);
  // Touch targets of 44 x 44 CSS px (links inside running text are exempt, as in WCAG).
  for (const el of document.querySelectorAll("a, button, select, input:not([type=hidden]), textarea, summary")) {
    if (!visible(el) || el.classList.contains("skip")) continue;
    if (el.tagName === "A" && el.closest("p, li, td, figcaption")) continue;
    const r = el.getBoundingClientRect();
    if (r.height < 44 || r.width < 44) {
      problems.push(`small target ${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  // Text contrast (WCAG AA): own text against the nearest opaque background.
  const rgb = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      if (e instanceof SVGElement && e.tagName !== "svg") continue;
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  let checked = 0;
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el) || el.tagName === "TITLE" || el.tagName === "DESC") continue;
    if (el.closest("title, desc, .visually-hidden")) continue;
    const cs = getComputedStyle(el);
    const fg = rgb(el instanceof SVGElement ? cs.fill : cs.color);
    if (!fg) continue;
    const l1 = lum(fg), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked += 1;
    if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need}: "${el.textContent.trim().slice(0, 30)}"`);
  }
  if (checked < 3) problems.push(`only ${checked} text elements checked`);
  return problems;
}
