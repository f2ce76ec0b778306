// The house rules axe-core does not check (tests/page/a11y.py runs both in each page,
// offline): the skip link comes first, exactly one h1, every <svg> is either hidden or an
// image with a title, no id twice (axe only checks ids that ARIA refers to), 44 x 44 px touch
// targets (axe's target-size asks 24), and the contrast of SVG text (axe checks HTML text).
// Returns a list of problems (empty when the page passes).
() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none";
  };
  // Skip link: the first focusable element, pointing at an element that exists.
  const first = document.querySelector("a[href], button, input, select, textarea");
  if (!first || !first.classList.contains("skip")) problems.push("skip link is not first");
  else if (!document.querySelector(first.getAttribute("href"))) problems.push("skip target missing");
  // One h1 (axe asks for at least one).
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  // Graphics carry a text alternative.
  for (const svg of document.querySelectorAll("svg")) {
    const title = svg.querySelector(":scope > title");
    if (svg.getAttribute("aria-hidden") !== "true" &&
        (svg.getAttribute("role") !== "img" || !title || !title.textContent.trim())) {
      problems.push(`svg without role=img and title: ${svg.id}`);
    }
  }
  const ids = [...document.querySelectorAll("[id]")].map((e) => e.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) problems.push(`duplicate ids: ${dup}`);
  // Touch targets of 44 x 44 CSS px (links inside running text are exempt, as in WCAG).
  for (const el of document.querySelectorAll("a, button, select, input:not([type=hidden]), textarea, summary")) {
    if (!visible(el) || el.classList.contains("skip")) continue;
    if (el.tagName === "A" && el.closest("p, li, td, figcaption")) continue;
    // A checkbox or radio button inside its label: the label is what a finger taps.
    const box = el.type === "checkbox" || el.type === "radio" ? el.closest("label") || el : el;
    const r = box.getBoundingClientRect();
    if (r.height < 44 || r.width < 44) {
      problems.push(`small target ${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${Math.round(r.width)}x${Math.round(r.height)}`);
    }
  }
  // Contrast (WCAG AA) of SVG text (axe checks HTML text): its fill against the nearest
  // opaque background.
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
  for (const el of document.querySelectorAll("svg text, svg tspan")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el) || el.tagName === "TITLE" || el.tagName === "DESC") continue;
    if (el.closest("title, desc, .visually-hidden")) continue;
    const cs = getComputedStyle(el);
    const fg = rgb(cs.fill);
    if (!fg) continue;
    const l1 = lum(fg), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need}: "${el.textContent.trim().slice(0, 30)}"`);
  }
  return problems;
}
