// ECGNet viewer: asks the JSON API (see /docs) and draws its answers. Plain JavaScript, no build step.
"use strict";

const LEAD_NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];
const GRID_3X4 = [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]];  // rows × columns of lead indices
const RHYTHM = 1;  // lead II
const MM_PER_S = 25, MM_PER_MV = 10, PAGE_S = 10;
const LEFT = 12, TOP = 3, RIGHT = 3, ROW_MM = 32, STRIP_MM = 28;

const $ = (id) => document.getElementById(id);
const state = {
  models: null, result: null,
  // what the screen shows was asked with: Why? and Print report use it, never inputs changed since
  shown: null,  // {source: {files: File[]} | {ecgId: n}, model, patient}
  ticket: 0,  // the latest diagnosis asked for: an older answer arriving later is dropped
  pending: null,  // what that latest request asked, until it is answered: a control changed meanwhile applies to it
  explanations: {}, explainClass: null, overlay: false,
  layout: "3x4", pxPerMm: null, page: 0,
};

// --- API -------------------------------------------------------------------------------------

async function api(method, url, body) {
  busy(true);
  try {
    const response = await fetch(url, {method, body});
    const data = await response.json().catch(() => ({detail: `${response.status} ${response.statusText}`}));
    if (!response.ok) throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
    showError(null);
    return data;
  } finally {
    busy(false);
  }
}

let pending = 0;
function busy(on) {
  pending += on ? 1 : -1;
  $("busy").hidden = pending <= 0;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

const PATIENT_FIELDS = ["age", "sex", "height", "weight"];

function patientValues() {
  return Object.fromEntries(PATIENT_FIELDS.map((k) => [k, $(k).value]).filter(([, v]) => v));
}

function setPatient(values) {
  for (const k of PATIENT_FIELDS) $(k).value = values[k] || "";
}

// the form of a request about what the screen shows: its record, model and patient facts
function shownForm() {
  const form = new FormData();
  for (const [k, v] of Object.entries(state.shown.patient)) form.append(k, v);
  if (state.shown.source.files) for (const f of state.shown.source.files) form.append("files", f, f.name);
  else form.append("ecg_id", state.shown.source.ecgId);
  form.append("model", state.shown.model);
  return form;
}

async function init() {
  state.models = await api("GET", "/api/models");
  const select = $("model");
  for (const m of state.models.models) {
    const auc = m.test_macro_auc ? `  (AUC ${m.test_macro_auc.toFixed(3)})`
      : m.cv_macro_auc ? `  (cross-validated AUC ${m.cv_macro_auc.toFixed(3)})` : "";
    const option = new Option(m.name + auc +
      (m.reads_signal === false ? " — patient data only, not the ECG" : ""), m.name);  // the server's answer
    option.selected = m.default;
    select.add(option);
  }
  $("ptbxl-field").hidden = !state.models.ptbxl;
  document.querySelectorAll(".ptbxl-only").forEach((e) => { e.hidden = !state.models.ptbxl; });
}

async function diagnose(source = null, newRecord = false) {
  // a control changed (no source): it applies to the record on its way, if one is, else to the one shown
  source = source || (state.pending ? state.pending.source : state.shown && state.shown.source);
  if (!source) return;
  // another record is another patient: the fields typed for the record shown do not carry over to it (they come
  // back if it is refused; before any record, what is typed is for the first one)
  if (newRecord && state.shown) setPatient({});
  const asked = {source, model: $("model").value, patient: patientValues()};
  state.pending = asked;
  const ticket = ++state.ticket;
  let data;
  try {
    if (source.files) {
      const form = new FormData();
      for (const [k, v] of Object.entries(asked.patient)) form.append(k, v);
      for (const f of source.files) form.append("files", f, f.name);
      form.append("model", asked.model);
      data = await api("POST", "/api/predict", form);
    } else {
      data = await api("GET", `/api/records/${source.ecgId}?model=${encodeURIComponent(asked.model)}`);
    }
  } catch (e) {
    if (ticket !== state.ticket) return;
    state.pending = null;
    // refused: the screen keeps what it showed, and the controls say so again
    showError(e.message + (state.shown ? " — still showing the previous record and model" : ""));
    if (state.shown) {
      $("model").value = state.shown.model;
      if (asked.source !== state.shown.source) setPatient(state.shown.patient);  // the record shown's patient
    }
    return;
  }
  if (ticket !== state.ticket) return;  // a later request was made: its answer is the one to show
  state.pending = null;
  state.shown = asked;
  state.result = data;
  state.explanations = {};
  state.explainClass = null;
  state.overlay = false;
  state.page = 0;
  state.pxPerMm = null;
  render();
}

async function explain(cls) {
  const key = `${cls}|${$("scope").value}`;
  if (!state.explanations[key]) {
    const form = shownForm();
    form.append("target", cls);
    form.append("scope", $("scope").value);
    try {
      state.explanations[key] = await api("POST", "/api/explain", form);
    } catch (e) {
      showError(e.message);
      return;
    }
  }
  state.explainClass = cls;
  state.overlay = true;
  const ex = state.explanations[key];
  // show the 10 s that were explained (a long record's segments need not start on a page boundary)
  state.page = (ex.segment ? ex.segment.start : ex.start) / ex.rate / PAGE_S;
  render();
  if (state.layout === "12") $("paper").scrollLeft = Math.max(0, (LEFT + ex.start / ex.rate * MM_PER_S) * state.pxPerMm - 60);
  // one column (narrow screens): the ECG is below the diagnoses; bring its overlay into view
  if (window.matchMedia("(max-width: 1100px)").matches) $("paper").scrollIntoView({block: "start"});
}

function currentExplanation() {
  return state.explainClass ? state.explanations[`${state.explainClass}|${$("scope").value}`] : null;
}

// --- rendering ---------------------------------------------------------------------------------

function render() {
  const {prediction} = state.result;
  $("empty").hidden = true;
  $("view").hidden = false;
  renderRecord(prediction);
  renderDiagnoses(prediction, state.result.reference);
  renderReference(state.result.reference);
  renderExplanation();
  renderPlot();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function renderRecord(p) {
  $("record-name").textContent = p.record;
  const sig = state.result.signal;
  const facts = [
    // who the file says this is (ID, name, born, acquired): the first thing to check against the patient
    ...(state.result.patient && state.result.patient.length ? [["patient", state.result.patient.join(" · ")]] : []),
    ["length", `${p.seconds} s`],
    ["recorded at", `${p.source_rate} Hz` + (p.source_rate !== sig.rate ? ` (shown as the model sees it: ${sig.rate} Hz)` : "")],
    ["model sees", p.coverage],
    ["metadata used", Object.keys(p.metadata).length ? Object.entries(p.metadata).map(([k, v]) => `${k} ${v}`).join(", ") : "none"],
  ];
  if (p.format) facts.push(["format", p.format + (p.derived_leads && p.derived_leads.length ? ` (derived: ${p.derived_leads.join(", ")})` : "")]);
  // the device's own interpretation, beside ECGNet's (never a model input)
  if (p.statements && p.statements.length) facts.push(["device's interpretation", p.statements.join(" · ")]);
  // per-lead signal quality (ecgnet.data.quality): the flagged leads and their flags, or that none is
  const flagged = (p.quality || []).filter((q) => q.flags.length);
  if (p.quality) facts.push(["signal quality", flagged.length ? flagged.map((q) => `${q.lead}: ${q.flags.join(", ")}`).join(" · ") : "no lead flagged"]);
  $("record-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
  $("warnings").replaceChildren(...p.warnings.map((w) => el("li", {class: "warning", text: w})),
                                ...(p.notes || []).map((n) => el("li", {class: "routine", text: `note: ${n}`})));
}

// Where the selected model's thresholds come from: a site profile, fold 9, or the manifest it was trained on.
function thresholdsHint() {
  const m = state.models.models.find((x) => x.name === state.shown.model) || {};
  const origin = m.site ? `Thresholds: site profile '${m.site}' (ecgnet calibrate), on calibrated probabilities.`
    : m.thresholds_from ? `Thresholds were chosen on ${m.thresholds_from} (Youden's J).` : "The run has no thresholds.";
  // Youden's J puts a rare class's threshold low: which classes, and what to read instead, is the server's note
  const low = state.result.low_thresholds;
  const rare = low && low.note ? ` ${low.note}.` : "";
  return `${origin} The bar's tick marks the threshold.${rare}`;
}

function renderDiagnoses(p, reference) {
  // the table is rebuilt: a keyboard user's focus stays on the same class's button
  const focused = document.activeElement && document.activeElement.classList.contains("explain-btn")
    ? document.activeElement.dataset.class : null;
  $("model-name").textContent = `· ${p.model}`;
  $("thresholds-hint").textContent = thresholdsHint();
  // no column where the reference has no labels of this model's classes (a model of its own classes on PTB-XL)
  const refLabels = reference && reference.labels ? new Set(reference.labels) : null;
  $("ref-head").hidden = !refLabels;
  const rows = p.diagnoses.map((d) => {
    const pct = (x) => `${Math.max(0, Math.min(100, 100 * x))}%`;
    const meter = el("span", {class: "meter"}, el("span", {class: "fill" + (d.positive ? " pos" : ""), style: `width:${pct(d.probability)}`}));
    if (d.threshold !== null) meter.append(el("span", {class: "tick", style: `left:calc(${pct(d.threshold)} - 1px)`, title: `threshold ${d.threshold}`}));
    const call = d.positive === null ? ["withheld", d.threshold === null ? "no threshold" : "withheld"]
      : d.positive ? ["positive", "positive"] : ["negative", "negative"];
    const button = el("button", {type: "button", class: "explain-btn", "data-class": d.class,
                                 "aria-pressed": String(state.overlay && state.explainClass === d.class),
                                 "aria-label": `${state.overlay && state.explainClass === d.class ? "Hide" : "Why"} ${d.class}`,
                                 text: state.overlay && state.explainClass === d.class ? "Hide" : "Why?"});
    button.addEventListener("click", () => {
      if (state.overlay && state.explainClass === d.class) { state.overlay = false; render(); } else explain(d.class);
    });
    const row = el("tr", {class: "dx-row" + (state.explainClass === d.class ? " selected" : ""), "data-class": d.class},
      el("td", {}, el("span", {class: "code", text: d.class}),  // a class without a description (""): its name alone
        el("span", {class: "desc", text: d.description || ""})),
      el("td", {}, el("span", {class: "prob"}, meter,
        el("span", {class: "num", text: d.probability.toFixed(3)}),
        el("span", {class: "num muted", text: d.threshold === null ? "" : `| ${d.threshold.toFixed(3)}`}))),
      el("td", {}, el("span", {class: `call ${call[0]}`, text: call[1]})));
    if (refLabels) row.append(el("td", {class: refLabels.has(d.class) ? "ref-yes" : "muted", text: refLabels.has(d.class) ? "✓" : "–"}));
    row.append(el("td", {}, button));
    return row;
  });
  $("diagnoses").replaceChildren(...rows);
  if (focused) {
    const again = [...document.querySelectorAll(".explain-btn")].find((b) => b.dataset.class === focused);
    if (again) again.focus();
  }
}

function renderReference(ref) {
  $("reference-card").hidden = !ref;
  if (!ref) return;
  // a model of its own classes has no PTB-XL labels: the server says so (labels_note), the statements stay
  const tags = !ref.labels ? [el("span", {class: "muted", text: ref.labels_note || "no reference labels"})]
    : ref.labels.length ? ref.labels.map((l) => el("span", {class: "tag", text: l}))
    : [el("span", {class: "muted", text: "no label of this task"})];
  const out = [el("div", {class: "ref-labels"}, ...tags)];
  if (ref.source === "PTB-XL") {
    out.push(el("div", {class: "muted", text: `PTB-XL ecg_id ${ref.ecg_id}` + (ref.task ? ` · ${ref.task} labels` : " · statements")}));
    out.push(el("ul", {class: "stmts"}, ...ref.statements.map((s) =>
      // PTB-XL gives a likelihood for diagnostic statements only; 0 means none given (SR, QWAVE …), not 0 %
      el("li", {text: `${s.code}${s.likelihood > 0 ? ` (${s.likelihood}%)` : ""} ${s.description}`}))));
    if (ref.report) out.push(el("p", {class: "note muted", text: `Report: “${ref.report}”`}));
    out.push(el("p", {class: "note" + (ref.in_training ? " warn" : ""), text: ref.note}));
  } else {
    out.push(el("div", {class: "muted", text: `${ref.source}: ${ref.codes.join(", ")}`}));
    if (ref.unmapped.length) out.push(el("p", {class: "note muted", text: `no PTB-XL class for: ${ref.unmapped.join(", ")}`}));
  }
  $("reference").replaceChildren(...out);
}

function renderExplanation() {
  const ex = currentExplanation();
  $("overlay-toggle").disabled = !ex;
  $("overlay-toggle").checked = !!ex && state.overlay;
  $("explanation-card").hidden = !state.explainClass;
  $("legend").hidden = !(ex && state.overlay);
  if (!ex) return;
  const rate = ex.rate, t0 = ex.start / rate, t1 = (ex.start + ex.samples) / rate;
  const decisive = ex.windows.find((w) => w.decisive);
  $("explain-class").textContent = ex.class;
  $("explain-text").textContent = `${ex.method}, ${ex.n_steps} steps, over ${t0.toFixed(2)}–${t1.toFixed(2)} s` +
    (decisive ? `; the decisive window starts at ${(decisive.start / rate).toFixed(2)} s (probability ${decisive.probability.toFixed(3)} there` +
      (ex.ensemble ? "; an ensemble combines its members' own record probabilities, so its probability is no single window's)." : ").") : ".") +
    // with a site profile the table's probabilities are calibrated, a window's are the model's own: say so
    (ex.window_probabilities ? ` Window probabilities: ${ex.window_probabilities}.` : "") +
    (t0 >= shownSeconds() ? ` This stretch lies beyond the first ${shownSeconds().toFixed(0)} s the viewer draws; ` +
      "the model read it." : "") +
    ` Colour: attribution per 40 ms, full at the 99th percentile of its size (${ex.max_abs.toPrecision(2)} logit units is the strongest).` +
    // 3 × 4 shows each lead for 2.5 s only: a 2.5 s window's colour falls on one column of leads
    (state.layout === "3x4" && t1 - t0 <= 2.6 ? " In the 3 × 4 layout only the leads of the window's column " +
      "show it; the 12-strip layout (or 'whole 10 s segment') shows every lead." : "");
  $("legend-text").textContent = `for ${ex.class}, ${t0.toFixed(2)}–${t1.toFixed(2)} s`;
  const box = $("modalities");
  box.replaceChildren();
  if (!ex.modalities) return;
  const m = ex.modalities;
  const table = el("table", {class: "bars"});
  const parts = m.parts || "modalities";  // a late-fusion ensemble's parts are its member runs
  table.append(el("tr", {}, el("td", {class: "muted", text: parts === "members" ? "member" : "modality"}),
    el("td", {class: "muted", text: m.weights ? "gate weight" : ""}), el("td", {class: "muted", text: `P(${ex.class}) without it`})));
  for (const [name, p] of Object.entries(m.without)) {
    const w = m.weights ? m.weights[name] : null;
    const weight = w === null ? el("span") : el("span", {class: "prob"},
      el("span", {class: "meter"}, el("span", {class: "fill pos", style: `width:${100 * w}%`})), el("span", {class: "num", text: w.toFixed(2)}));
    const delta = Number(p.toFixed(3)) - Number(m.probability.toFixed(3));  // as shown: no "0.998 (−0.000)"
    const sign = Math.abs(delta) < 5e-4 ? "±" : delta > 0 ? "+" : "−";
    table.append(el("tr", {class: "modality-row"}, el("td", {text: name}), el("td", {}, weight),
      el("td", {class: "num", text: `${p.toFixed(3)} (${sign}${Math.abs(delta).toFixed(3)})`})));
  }
  box.replaceChildren(el("h3", {text: `${parts === "members" ? "Members" : "Modalities"} — P(${ex.class}) = ${m.probability.toFixed(3)} with all of them`}), table);
}

// --- the ECG paper (SVG, in millimetres) -------------------------------------------------------

function renderPlot() {
  const sig = state.result.signal;
  const seconds = sig.samples / sig.rate;
  const pages = Math.max(1, Math.ceil(seconds / PAGE_S - 1e-9));
  state.page = Math.min(Math.max(0, state.page), pages - 1);
  const paged = state.layout === "3x4";
  $("pager").hidden = !paged || pages < 2;
  $("prev-page").disabled = state.page <= 0;
  $("next-page").disabled = state.page >= pages - 1;
  $("page-label").textContent = shownSpan();
  const svg = paged ? draw3x4(sig, state.page * PAGE_S) : drawStrips(sig);
  const paper = $("paper");
  if (!state.pxPerMm) state.pxPerMm = Math.max(2, Math.min(6, (paper.clientWidth - 2) / svg.width));
  paper.innerHTML = svg.markup(state.pxPerMm);
  $("caption").textContent = `25 mm/s · 10 mm/mV · 1 mm and 5 mm grid · ${sig.rate} Hz as the model sees it` +
    ` · lead offsets removed for display · calibration pulse 1 mV` + (paged ? "" : " · scroll sideways for time") +
    (sig.note ? ` · ${sig.note}` : "");
}

// The seconds the viewer draws: a long record's first part only (the server says so in signal.note).
function shownSeconds() {
  return state.result.signal.samples / state.result.signal.rate;
}

// The seconds of the record on the paper, in words (the 3×4 layout shows 10 s from state.page × 10 s).
function shownSpan() {
  const seconds = shownSeconds(), record = state.result.prediction.seconds;
  const of = record > seconds + 0.05 ? `of the first ${seconds.toFixed(1)} s (record ${record.toFixed(1)} s)`
    : `of ${seconds.toFixed(1)} s`;
  if (state.layout !== "3x4") return `0–${seconds.toFixed(1)} s ${of}`;
  const t0 = state.page * PAGE_S;
  return `${t0.toFixed(1)}–${Math.min(seconds, t0 + PAGE_S).toFixed(1)} s ${of}`;
}

function medians(mv) {
  return mv.map((lead) => { const s = Float64Array.from(lead).sort(); return s.length ? s[s.length >> 1] : 0; });
}

function paperSvg(widthMm, heightMm, body) {
  return {
    width: widthMm,
    markup: (px) => `<svg xmlns="http://www.w3.org/2000/svg" id="ecg-svg" role="img" aria-label="the ECG on paper, 25 mm/s, 10 mm/mV"` +
      ` width="${(widthMm * px).toFixed(0)}" height="${(heightMm * px).toFixed(0)}"` +
      ` viewBox="0 0 ${widthMm} ${heightMm}" font-family="Helvetica, Arial, sans-serif">` +
      `<defs><pattern id="grid1" width="1" height="1" patternUnits="userSpaceOnUse"><path d="M1 0V1H0" fill="none" stroke="#f5c9c4" stroke-width="0.06"/></pattern>` +
      `<pattern id="grid5" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="url(#grid1)"/>` +
      `<path d="M5 0V5H0" fill="none" stroke="#e49a92" stroke-width="0.14"/></pattern></defs>` +
      `<rect width="${widthMm}" height="${heightMm}" fill="#fffdfc"/><rect width="${widthMm}" height="${heightMm}" fill="url(#grid5)"/>` +
      body + `</svg>`,
  };
}

function trace(values, i0, i1, x0, y0, rate, offset, cls, lead) {
  const dx = MM_PER_S / rate;
  let d = "";
  for (let i = i0; i < i1; i++) {
    d += (i === i0 ? "M" : "L") + (x0 + (i - i0) * dx).toFixed(2) + " " + (y0 - (values[i] - offset) * MM_PER_MV).toFixed(2);
  }
  return `<path class="${cls}" data-lead="${LEAD_NAMES[lead]}" d="${d}" fill="none" stroke="#111" stroke-width="0.28" stroke-linejoin="round" stroke-linecap="round"/>`;
}

function calibration(y0) {
  const x = 3;
  return `<path d="M${x} ${y0}h1.5v-10h5v10h1.5" fill="none" stroke="#111" stroke-width="0.28"/>`;
}

// a lead's name, haloed in the paper's colour so that a trace or a bracket passing under it leaves it legible
function label(text, x, y) {
  return `<text x="${x}" y="${y}" font-size="3.4" font-weight="600" fill="#1f2933" paint-order="stroke" ` +
    `stroke="#fffdfc" stroke-width="0.9" stroke-linejoin="round">${text}</text>`;
}

// How far (mm) a trace of samples [i0, i1) reaches above and below its baseline at 10 mm/mV.
function reach(values, i0, i1, offset) {
  let hi = -Infinity, lo = Infinity;
  for (let i = i0; i < i1; i++) { if (values[i] > hi) hi = values[i]; if (values[i] < lo) lo = values[i]; }
  return i1 > i0 ? [(hi - offset) * MM_PER_MV, (offset - lo) * MM_PER_MV] : [0, 0];
}

// Paper added above or below (whole 5 mm squares) so that no wave is cut at the paper's edge: a tall R wave in
// the top row or a deep S in the bottom one is what voltage criteria (LVH) are read from.
function margin(needed) {
  return needed > 0 ? Math.ceil((needed + 1) / 5) * 5 : 0;
}

// Attribution of lead `lead` over samples [i0, i1), drawn as coloured 1 mm columns of height `h` from y `top`.
function overlay(lead, i0, i1, x0, top, h, rate) {
  const ex = currentExplanation();
  if (!ex || !state.overlay) return "";
  const bin = Math.max(1, Math.round(rate * 0.04));
  const from = Math.max(i0, ex.start), to = Math.min(i1, ex.start + ex.samples);
  let out = "";
  for (let s = from; s < to; s += bin) {
    const e = Math.min(to, s + bin);
    let sum = 0;
    for (let i = s; i < e; i++) sum += ex.values[lead][i - ex.start];
    const v = sum / (e - s) / overlayScale(ex);
    const alpha = Math.min(1, Math.abs(v)) * 0.7;
    if (alpha < 0.02) continue;
    const colour = v > 0 ? "214,39,40" : "31,96,196";
    out += `<rect class="attr" x="${(x0 + (s - i0) * MM_PER_S / rate).toFixed(2)}" y="${top}" width="${((e - s) * MM_PER_S / rate).toFixed(2)}"` +
      ` height="${h}" fill="rgb(${colour})" fill-opacity="${alpha.toFixed(2)}"/>`;
  }
  return out;
}

// The 99th percentile of |binned attribution| over all leads, so that a few spikes do not wash out the rest.
function overlayScale(ex) {
  if (ex._scale) return ex._scale;
  const bin = Math.max(1, Math.round(ex.rate * 0.04)), all = [];
  for (const lead of ex.values) {
    for (let s = 0; s < lead.length; s += bin) {
      const part = lead.slice(s, s + bin);
      all.push(Math.abs(part.reduce((a, b) => a + b, 0) / part.length));
    }
  }
  all.sort((a, b) => a - b);
  ex._scale = all[Math.floor(0.99 * (all.length - 1))] || 1;
  return ex._scale;
}

// A bracket over the decisive window (the highest-scoring one the model scored: for a model that takes the maximum over
// windows, the one whose probability is its segment's), between x0 and x1 mm.
function decisiveMarker(first, last, y, rate) {
  const ex = currentExplanation();
  const w = ex && state.overlay ? ex.windows.find((v) => v.decisive) : null;
  if (!w || w.start + w.samples <= first || w.start >= last) return "";
  const x0 = LEFT + (Math.max(w.start, first) - first) * MM_PER_S / rate;
  const x1 = LEFT + (Math.min(w.start + w.samples, last) - first) * MM_PER_S / rate;
  return `<g class="decisive"><path d="M${x0.toFixed(2)} ${y + 1.2}v-1.2H${x1.toFixed(2)}v1.2" fill="none" stroke="#1d5fa7" stroke-width="0.35"/>` +
    `<text x="${((x0 + x1) / 2).toFixed(2)}" y="${y - 0.6}" font-size="2.3" fill="#1d5fa7" text-anchor="middle">decisive window</text></g>`;
}

function draw3x4(sig, startS) {
  const rate = sig.rate, offsets = medians(sig.mv), colMm = 2.5 * MM_PER_S, colSamples = Math.round(2.5 * rate);
  const width = LEFT + PAGE_S * MM_PER_S + RIGHT, height = 2 * TOP + 4 * ROW_MM;
  const first = Math.round(startS * rate);
  let under = "", body = "";
  GRID_3X4.forEach((leads, r) => {
    const top = TOP + r * ROW_MM, y0 = top + ROW_MM * 0.62;
    body += calibration(y0);
    leads.forEach((lead, c) => {
      const i0 = first + c * colSamples, i1 = Math.min(sig.samples, i0 + colSamples), x0 = LEFT + c * colMm;
      under += overlay(lead, i0, i1, x0, top, ROW_MM, rate);
      if (i1 > i0) body += trace(sig.mv[lead], i0, i1, x0, y0, rate, offsets[lead], "lead-trace", lead);
      body += label(LEAD_NAMES[lead], x0 + 1.5, top + 5);
      if (c > 0) body += `<path d="M${x0} ${y0 - 4}v8" stroke="#111" stroke-width="0.28"/>`;
    });
  });
  const top = TOP + 3 * ROW_MM, y0 = top + ROW_MM * 0.62;
  const i1 = Math.min(sig.samples, first + Math.round(PAGE_S * rate));
  under += overlay(RHYTHM, first, i1, LEFT, top, ROW_MM, rate);
  body += calibration(y0) + trace(sig.mv[RHYTHM], first, i1, LEFT, y0, rate, offsets[RHYTHM], "rhythm-trace", RHYTHM) +
    decisiveMarker(first, i1, top + 3.5, rate) + label(`${LEAD_NAMES[RHYTHM]} (rhythm)`, LEFT + 1.5, top + 5);
  const above = margin(Math.max(...GRID_3X4[0].map((lead, c) => reach(sig.mv[lead], first + c * colSamples,
    Math.min(sig.samples, first + (c + 1) * colSamples), offsets[lead])[0])) - (TOP + ROW_MM * 0.62));
  const below = margin(reach(sig.mv[RHYTHM], first, i1, offsets[RHYTHM])[1] - (height - y0));
  return paperSvg(width, height + above + below,
                  `<g transform="translate(0 ${above})"><g class="attr-overlay">${under}</g>${body}</g>`);
}

function drawStrips(sig) {
  const rate = sig.rate, offsets = medians(sig.mv), seconds = sig.samples / rate;
  const width = LEFT + Math.max(PAGE_S, Math.ceil(seconds)) * MM_PER_S + RIGHT, height = 2 * TOP + 12 * STRIP_MM + 3;
  let under = "", body = "";
  for (let lead = 0; lead < 12; lead++) {
    const top = TOP + 3 + lead * STRIP_MM, y0 = top + STRIP_MM * 0.6;
    under += overlay(lead, 0, sig.samples, LEFT, top, STRIP_MM, rate);
    body += calibration(y0) + trace(sig.mv[lead], 0, sig.samples, LEFT, y0, rate, offsets[lead], "lead-trace", lead) +
      label(LEAD_NAMES[lead], LEFT + 1.5, top + 5);
  }
  body += decisiveMarker(0, sig.samples, TOP + 1.5, rate);
  const above = margin(reach(sig.mv[0], 0, sig.samples, offsets[0])[0] - (TOP + 3 + STRIP_MM * 0.6));
  const below = margin(reach(sig.mv[11], 0, sig.samples, offsets[11])[1] - (height - (TOP + 3 + 11 * STRIP_MM + STRIP_MM * 0.6)));
  for (let s = 1; s < seconds; s++) body += `<text x="${LEFT + s * MM_PER_S}" y="${height + below - 0.6}" font-size="2.2" fill="#66727f" text-anchor="middle">${s} s</text>`;
  return paperSvg(width, height + above + below,
                  `<g transform="translate(0 ${above})"><g class="attr-overlay">${under}</g>${body}</g>`);
}

// --- downloads -------------------------------------------------------------------------------------

function save(blob, name) {
  const a = el("a", {href: URL.createObjectURL(blob), download: name});
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function baseName() {
  // the record's name without its folder or suffix: 129DYPRG.svg, not 129DYPRG.XML.svg
  const name = state.result.prediction.record.split("/").pop().replace(/\.(hea|xml|dcm|scp|edf|bdf)$/i, "");
  return name.replace(/[^A-Za-z0-9_.-]+/g, "_") || "ecg";
}

function svgText() {
  return new XMLSerializer().serializeToString($("ecg-svg"));
}

// What a PNG carries above the paper, so that it stands alone: the record and model, the scale and the
// part shown, the diagnosis (positive classes with probability and threshold) and the overlay, if any.
function pngHeader() {
  const p = state.result.prediction, sig = state.result.signal, ex = currentExplanation();
  const positives = p.diagnoses.filter((d) => d.positive).map((d) => `${d.class} ${d.probability.toFixed(3)} (≥ ${d.threshold.toFixed(3)})`);
  const calls = p.diagnoses.some((d) => d.positive === null) ? "no positive/negative calls (see the warnings)"
    : positives.length ? `positive: ${positives.join(", ")}` : "no class above its threshold";
  const lines = [`${p.record} — model ${p.model}` + (p.site ? ` with site profile '${p.site}' (calibrated probabilities)` : ""),
    `25 mm/s · 10 mm/mV · ${sig.rate} Hz · ${shownSpan()}`, `Diagnosis: ${calls}`];
  if (ex && state.overlay) {
    lines.push(`Overlay: ${ex.method.split(" (")[0]} for ${ex.class}, ${(ex.start / ex.rate).toFixed(1)}–${((ex.start + ex.samples) / ex.rate).toFixed(1)} s`);
  }
  return lines;
}

function downloadPng() {
  const svg = $("ecg-svg"), scale = 8 / state.pxPerMm;  // 8 px per mm ≈ 200 dpi
  const w = Math.round(svg.width.baseVal.value * scale), h = Math.round(svg.height.baseVal.value * scale);
  const lines = pngHeader(), lineH = 40, head = lines.length * lineH + 16;
  const image = new Image();
  image.onload = () => {
    const canvas = el("canvas", {width: w, height: h + head});
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h + head);
    ctx.fillStyle = "#1f2933";
    lines.forEach((line, i) => {
      ctx.font = `${i === 0 ? "600 " : ""}28px Helvetica, Arial, sans-serif`;
      ctx.fillText(line, 24, 12 + (i + 1) * lineH - 10, w - 48);
    });
    ctx.drawImage(image, 0, head, w, h);
    canvas.toBlob((blob) => save(blob, `${baseName()}.png`), "image/png");
  };
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svgText());
}

async function downloadReport() {  // the printable page of `ecgnet report` (A4, 25 mm/s, 10 mm/mV)
  const form = shownForm();
  busy(true);
  try {
    const response = await fetch("/api/report", {method: "POST", body: form});
    if (!response.ok) {
      const data = await response.json().catch(() => ({detail: `${response.status} ${response.statusText}`}));
      throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
    }
    showError(null);
    save(await response.blob(), `${baseName()}_report.pdf`);
  } catch (e) {
    showError(e.message);
  } finally {
    busy(false);
  }
}

// --- wiring ------------------------------------------------------------------------------------------

function zoom(factor) {
  if (!state.result) return;
  state.pxPerMm = factor ? Math.max(1.5, Math.min(16, state.pxPerMm * factor)) : null;
  renderPlot();
}

function wire() {
  $("files").addEventListener("change", (e) => {
    if (!e.target.files.length) return;
    diagnose({files: [...e.target.files]}, true);
    e.target.value = "";  // choosing the same file again is a new request
  });
  const open = () => {
    const text = $("ecg-id").value.trim(), id = Number(text);
    if (!/^[0-9]+$/.test(text) || id < 1) {
      showError(`ecg_id ${text || "(empty)"}: a whole number from 1`);
      return;
    }
    diagnose({ecgId: id}, true);
  };
  $("open-record").addEventListener("click", open);
  $("ecg-id").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); open(); } });
  $("source").addEventListener("submit", (e) => e.preventDefault());
  let settle = null;  // arrowing through the list fires a change per key: diagnose once the choice settles
  $("model").addEventListener("change", () => { clearTimeout(settle); settle = setTimeout(() => diagnose(), 350); });
  for (const k of PATIENT_FIELDS) $(k).addEventListener("change", () => diagnose());  // the screen follows them
  $("layout").addEventListener("change", (e) => {
    state.layout = e.target.value;
    state.pxPerMm = null;
    if (state.result) render();  // the explanation's text depends on the layout too
  });
  $("prev-page").addEventListener("click", () => { state.page = Math.ceil(state.page) - 1; renderPlot(); });
  $("next-page").addEventListener("click", () => { state.page = Math.floor(state.page) + 1; renderPlot(); });
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("zoom-fit").addEventListener("click", () => zoom(null));
  $("overlay-toggle").addEventListener("change", (e) => { state.overlay = e.target.checked; render(); });
  $("scope").addEventListener("change", () => { if (state.explainClass) explain(state.explainClass); });
  $("download-svg").addEventListener("click", () => save(new Blob([svgText()], {type: "image/svg+xml"}), `${baseName()}.svg`));
  $("download-png").addEventListener("click", downloadPng);
  $("download-pdf").addEventListener("click", downloadReport);
  $("download-json").addEventListener("click", () => {  // the schema of `ecgnet predict --json`: a list of results
    save(new Blob([JSON.stringify([state.result.prediction], null, 2) + "\n"], {type: "application/json"}), `${baseName()}.json`);
  });
}

wire();
init().catch((e) => showError(e.message));
