// Building DOM nodes from parts, never from HTML strings: text is always set as text, so
// nothing an agent or a user wrote can inject markup or script.

/**
 * h("button", {class: "x", type: "button", on: {click: fn}}, "text", child, ...)
 * Attributes: `class`, `text`, `on` (event listeners), `dataset`, booleans (true sets, false or
 * null omits), others as attributes. Children: nodes, strings, numbers, arrays, null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element (same attributes as h, without `on`). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [event, listener] of Object.entries(value)) node.addEventListener(event, listener);
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** Append children to `node` (null, false and undefined skipped; strings as text). */
export function add(node, ...children) {
  append(node, children);
  return node;
}

/** Replace every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let counter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: returns {field, input}. */
export function field(label, input, hint) {
  if (!input.id) input.id = uid("f");
  const parts = [h("label", { for: input.id, text: label }), input];
  if (hint) {
    const hintId = uid("hint");
    input.setAttribute("aria-describedby", hintId);
    parts.push(h("p", { class: "hint", id: hintId, text: hint }));
  }
  return { field: h("div", { class: "field" }, parts), input };
}

/** A <select> of [value, label] pairs. */
export function select(options, value) {
  const node = h("select");
  for (const [v, label] of options) {
    node.append(h("option", { value: v, text: label, selected: v === value }));
  }
  return node;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, text: status });
}

/** A <dl> of [term, value] pairs (values null/undefined skipped). */
export function definitions(pairs, cls = "record") {
  const list = h("dl", { class: cls });
  for (const [term, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    list.append(h("div", {}, h("dt", { text: term }), h("dd", {}, value)));
  }
  return list;
}
