// Small SVG charts drawn by hand: bars for counts, lines for rates and latencies, several series
// per chart. Every data point is a mark (class "mark", with a <title> for its value), the chart has
// an aria-label summary, and a table of the same numbers follows for screen readers.
import { h, svg } from "./dom.js";
import { tickLabel } from "./format.js";

const W = 560;
const H = 220;
const PAD = { left: 68, right: 12, top: 12, bottom: 28 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * exp >= value) return step * exp;
  return 10 * exp;
}

/**
 * A time-series chart.
 * spec: {title, kind: "bar"|"line", series: [{name, points: [[t, value|null], ...]}],
 *        start, end, step (seconds), format (value -> text)}
 */
export function timeChart(spec) {
  const { title, kind, series, start, end, step, format } = spec;
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => v !== null && v !== undefined);
  const top = niceMax(Math.max(0, ...values));
  const x = (t) => PAD.left + ((t - start) / Math.max(1, end - start)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const plot = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    role: "img",
    "aria-label": `${title}: ${values.length} data points${values.length ? `, highest ${format(Math.max(...values))}` : ""}`,
    class: `chart-${kind}`,
  });
  for (let i = 0; i <= 4; i += 1) {
    const v = (top * i) / 4;
    plot.append(
      svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", text: format(v) }),
    );
  }
  const span = end - start;
  for (let i = 0; i <= 4; i += 1) {
    const t = start + Math.round(((span / step) * i) / 4) * step; // on bucket boundaries
    plot.append(svg("text", { class: "tick", x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", text: tickLabel(t, span) }));
  }
  plot.append(
    svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
    svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }),
  );
  if (!values.length) {
    plot.append(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle", text: "no runs in this window" }));
  }
  const slot = (step / Math.max(1, span)) * (W - PAD.left - PAD.right);
  series.forEach((s, index) => {
    const cls = `series-${index % 6}`;
    if (kind === "bar") {
      const width = Math.max(1, (slot * 0.8) / series.length);
      for (const [t, v] of s.points) {
        if (!v) continue;
        const left = x(t) + slot * 0.1 + width * index;
        plot.append(
          svg("rect", { class: `mark ${cls}`, x: left, y: y(v), width, height: Math.max(0.5, H - PAD.bottom - y(v)) },
            svg("title", { text: `${s.name ? `${s.name}, ` : ""}${tickLabel(t, span)}: ${format(v)}` })),
        );
      }
    } else {
      const present = s.points.filter(([, v]) => v !== null && v !== undefined);
      if (present.length > 1) {
        const d = present.map(([t, v], i) => `${i ? "L" : "M"}${(x(t) + slot / 2).toFixed(1)},${y(v).toFixed(1)}`).join("");
        plot.append(svg("path", { class: `line ${cls}`, d }));
      }
      for (const [t, v] of present) {
        plot.append(
          svg("circle", { class: `mark ${cls}`, cx: x(t) + slot / 2, cy: y(v), r: 3 },
            svg("title", { text: `${s.name ? `${s.name}, ` : ""}${tickLabel(t, span)}: ${format(v)}` })),
        );
      }
    }
  });
  const legend = series.length > 1 || (series[0] && series[0].name)
    ? h("ul", { class: "legend" }, series.map((s, i) => h("li", { class: `series-${i % 6}` }, h("span", { class: "swatch", "aria-hidden": "true" }), s.name)))
    : null;
  return h("figure", { class: "chart", dataset: { chart: spec.id || title } }, h("figcaption", { text: title }), plot, legend, dataTable(spec, values.length));
}

/** The chart's numbers as a table, for screen readers (visually hidden). */
function dataTable({ title, series, format, start, end }, count) {
  if (!count) return null;
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  const rows = times
    .map((t) => [t, series.map((s) => (s.points.find(([pt]) => pt === t) || [])[1])])
    .filter(([, vs]) => vs.some((v) => v !== null && v !== undefined && v !== 0));
  return h(
    "table",
    { class: "visually-hidden" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "time" }), series.map((s) => h("th", { scope: "col", text: s.name || "value" })))),
    h("tbody", {}, rows.map(([t, vs]) => h("tr", {}, h("th", { scope: "row", text: tickLabel(t, end - start) }), vs.map((v) => h("td", { text: v === null || v === undefined ? "–" : format(v) }))))),
  );
}
