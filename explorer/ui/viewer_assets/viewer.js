// The browser viewer of the MRI robustness explorer (Streamlit custom component v2, no iframe).
//
// Python sends each image once as 16-bit integers with a scale (explorer/viewer/payload.py); everything a reader
// does while looking -- window/level, zoom, pan, flip, blink, error maps, layouts, slices already received -- runs
// here without a Streamlit rerun. Only an ROI box or a profile line drawn here (for the statistics table and the
// profile) and a slice the browser does not hold yet go back to Python.
//
// Mouse (OHIF's habits): left = the chosen tool (W/L by default), middle = pan, right = window/level, wheel = the
// next slice (zoom where the volume has one slice, or with Ctrl), double-click = fit. Keys: see HELP.

const LEVELS = 65535;
const STORE = new Map(); // component key -> {view, stacks: Map(stack -> Map(slice -> frame)), frames: Map(id -> frame)}
const LAYOUTS = [["row", "Row"], ["2xn", "2×N"], ["grid", "Grid"], ["large", "1 + thumbnails"], ["blink", "Blink"]];
const TOOLS = [["wl", "W/L"], ["pan", "Pan"], ["zoom", "Zoom"], ["roi", "ROI box"], ["line", "Line"]];
const ERROR_NAMES = {off: "off", abs: "|error|", signed: "signed error", ssim: "local SSIM", pair: "|difference|"};
const PRESET_NAMES = {full: "Full range", tissue: "Tissue", auto: "Auto (99.5%)"};
const HELP = [
  ["← / →", "previous / next image (1 + thumbnails, blink)"], ["↑ / ↓, wheel", "previous / next slice"],
  ["f", "1 + thumbnails (flip)"], ["b", "blink on / off"], ["g", "row layout"], ["e", "next error map"],
  ["i", "invert"], ["r", "reset zoom, window and invert"], ["1 2 3", "window: full / tissue / auto"],
  ["+ / −", "zoom in / out"], ["w p z o l", "tool: W/L, pan, zoom, ROI box, line"], ["space", "pause blink"],
  ["right drag", "window/level (horizontal: width, vertical: centre)"], ["middle drag", "pan"],
  ["Ctrl + wheel", "zoom"], ["double-click", "fit the image"],
];
const now = () => (typeof performance !== "undefined" ? performance.now() : Date.now());
const perf = (globalThis.__mrxv = globalThis.__mrxv || {paints: [], layouts: [], slices: [], decoded: 0});

// ------------------------------------------------------------------------------------------------ decoding
function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new Error("the viewer received no image data");
}

function decode(data) {
  const bytes = asBytes(data);
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== "MRXV") throw new Error("not a viewer payload");
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const start = 8 + length, [h, w] = header.shape, n = h * w;
  for (const frame of header.frames) {
    if (!frame.planes) continue;
    frame.data = {};
    for (const [label, [offset, scale]] of Object.entries(frame.planes)) {
      const copy = new Uint8Array(2 * n);
      copy.set(bytes.subarray(start + offset, start + offset + 2 * n));
      const q = new Uint16Array(copy.buffer), out = new Float32Array(n), k = scale / LEVELS;
      for (let i = 0; i < n; i++) out[i] = q[i] * k;
      frame.data[label] = out;
    }
    perf.decoded += 1;
  }
  return header;
}

// ------------------------------------------------------------------------------------------------ measures
// skimage.metrics.structural_similarity(win_size=7, data_range=R, full=True): uniform 7x7 window, scipy's
// "reflect" border (d c b a | a b c d | d c b a), sample covariance (49 / 48).
function uniform7(src, h, w) {
  const tmp = new Float64Array(h * w), out = new Float64Array(h * w), r = 3;
  const reflect = (i, n) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let d = -r; d <= r; d++) s += src[row + reflect(x + d, w)];
      tmp[row + x] = s / 7;
    }
  }
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      let s = 0;
      for (let d = -r; d <= r; d++) s += tmp[reflect(y + d, h) * w + x];
      out[y * w + x] = s / 7;
    }
  }
  return out;
}

function ssimMap(ref, img, h, w, range) {
  const n = h * w, xx = new Float64Array(n), yy = new Float64Array(n), xy = new Float64Array(n);
  for (let i = 0; i < n; i++) { xx[i] = ref[i] * ref[i]; yy[i] = img[i] * img[i]; xy[i] = ref[i] * img[i]; }
  const ux = uniform7(ref, h, w), uy = uniform7(img, h, w), uxx = uniform7(xx, h, w), uyy = uniform7(yy, h, w),
    uxy = uniform7(xy, h, w), norm = 49 / 48, c1 = (0.01 * range) ** 2, c2 = (0.03 * range) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const vx = norm * (uxx[i] - ux[i] * ux[i]), vy = norm * (uyy[i] - uy[i] * uy[i]), vxy = norm * (uxy[i] - ux[i] * uy[i]);
    out[i] = ((2 * ux[i] * uy[i] + c1) * (2 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
  }
  return out;
}

function maxOf(a) { let m = -Infinity; for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i]; return m; }

function percentile(a, p, absolute) {
  const step = Math.max(1, Math.floor(a.length / 40000)), s = [];
  for (let i = 0; i < a.length; i += step) s.push(absolute ? Math.abs(a[i]) : a[i]);
  s.sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.round((p / 100) * (s.length - 1))))];
}

// ------------------------------------------------------------------------------------------------ state
// Our own child of the component's root: Streamlit puts the CSS into the root, so it is never cleared.
function host(parent) {
  let div = Array.from(parent.children).find((c) => c.classList && c.classList.contains("mrxv-host"));
  if (!div) { div = document.createElement("div"); div.className = "mrxv-host"; parent.appendChild(div); }
  return div;
}

function store(key) {
  if (!STORE.has(key)) STORE.set(key, {view: null, stacks: new Map(), frames: new Map(), listeners: null});
  return STORE.get(key);
}

function freshView(header) {
  const s = header.settings;
  return {layout: s.layout || "row", columns: s.columns || 3, error: s.error || "off", errScale: null, preset: "full",
          wl: null, invert: false, zoom: 1, cx: null, cy: null, selected: 0, tool: "wl", blink: false,
          blinkMs: 600, partner: null, smooth: false, help: false, slice: null, wantSlice: null,
          ...(s.mark ? {tool: "mark"} : {})};
}

// ------------------------------------------------------------------------------------------------ component
export default function viewer(component) {
  const {data, key, parentElement, setStateValue, setTriggerValue} = component;
  const t0 = now();
  const st = store(key);
  let header;
  try {
    header = decode(data);
  } catch (err) {
    host(parentElement).innerHTML = `<div class="mrxv-fail">The viewer could not read its data: ${String(err.message || err)}</div>`;
    return () => {};
  }
  const settings = header.settings, [H, W] = header.shape, stackKey = settings.stack || "";
  if (!st.stacks.has(stackKey)) st.stacks.set(stackKey, new Map());
  const stack = st.stacks.get(stackKey);
  const missing = [];
  for (const f of header.frames) {
    if (f.planes) { f.cache = new Map(); st.frames.set(f.id, f); }
    const known = st.frames.get(f.id);
    if (known) stack.set(f.slice, known); else missing.push(f.id);
  }
  if (missing.length) { setTriggerValue("missing", missing.join(",")); }
  const currentId = header.current;
  if (!st.view || st.view.shapeKey !== `${H}x${W}|${stackKey}`) {
    st.view = freshView(header);
    st.view.shapeKey = `${H}x${W}|${stackKey}`;
  }
  const view = st.view;
  const served = st.frames.get(currentId);
  if (view.wantSlice !== null && served && served.slice === view.wantSlice) view.wantSlice = null;
  const shownFrame = () => {
    if (view.wantSlice !== null && stack.has(view.wantSlice)) return stack.get(view.wantSlice);
    return st.frames.get(currentId) || null;
  };
  if (!shownFrame()) {
    host(parentElement).innerHTML = `<div class="mrxv-wait">Loading the images…</div>`;
    return () => {};
  }
  if (view.cx === null) { view.cx = W / 2; view.cy = H / 2; }

  // ---------------------------------------------------------------------------------- DOM
  const root = document.createElement("div");
  root.className = "mrxv";
  root.tabIndex = 0;
  root.setAttribute("data-testid", "mrxv-viewer");
  const holder = host(parentElement);
  const active = parentElement.activeElement !== undefined ? parentElement.activeElement : document.activeElement;
  const hadFocus = Boolean(active && holder.contains(active)) || st.focused === true;
  holder.innerHTML = "";
  holder.appendChild(root);
  const bar = el("div", "mrxv-bar", root);
  const stage = el("div", "mrxv-stage", root);
  const status = el("div", "mrxv-status", root);
  status.setAttribute("data-testid", "mrxv-status");
  const help = el("div", "mrxv-help", root);
  help.innerHTML = "<b>Keys and mouse</b><table>" + HELP.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("") + "</table>";

  function el(tag, cls, parent, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  const frameNow = () => shownFrame();
  const refLabel = () => frameNow().reference;
  const unit = () => {
    const f = frameNow(), r = f.reference;
    if (!f.unitValue) f.unitValue = Math.max(1e-12, maxOf(f.data[r || f.labels[0]]));
    return f.unitValue;
  };
  const methods = () => frameNow().labels.filter((l) => l !== refLabel());
  const panels = () => (refLabel() && settings.show_target !== false ? [refLabel()] : []).concat(methods());
  const pairs = settings.pairs || {};
  const errorModes = () => {
    const modes = ["off"];
    if (Object.keys(pairs).length) modes.push("pair");
    if (refLabel()) modes.push("abs", "signed", "ssim");
    return modes;
  };
  if (!errorModes().includes(view.error)) view.error = errorModes().includes("abs") ? "abs" : "off";

  function windowNow() {
    if (view.wl) return [view.wl.c * unit() - (view.wl.w * unit()) / 2, view.wl.c * unit() + (view.wl.w * unit()) / 2];
    const w = frameNow().windows[view.preset] || [0, unit()];
    return [w[0], w[1] > w[0] ? w[1] : w[0] + unit() * 1e-3];
  }
  function setWindow(lo, hi) {
    const u = unit();
    view.wl = {c: (lo + hi) / 2 / u, w: Math.max(1e-4, (hi - lo) / u)};
  }

  function errorMap(label) {
    const f = frameNow(), mode = view.error;
    if (mode === "off") return null;
    const keyE = `err|${mode}|${label}`;
    if (f.cache.has(keyE)) return f.cache.get(keyE);
    let out = null;
    const img = f.data[label];
    if (mode === "pair") {
      const partner = pairs[label];
      if (partner && f.data[partner]) {
        const p = f.data[partner];
        out = new Float32Array(img.length);
        for (let i = 0; i < img.length; i++) out[i] = Math.abs(img[i] - p[i]);
      }
    } else if (f.reference && label !== f.reference) {
      const ref = f.data[f.reference];
      if (mode === "ssim") out = ssimMap(ref, img, H, W, unit());
      else {
        out = new Float32Array(img.length);
        for (let i = 0; i < img.length; i++) out[i] = mode === "abs" ? Math.abs(img[i] - ref[i]) : img[i] - ref[i];
      }
    }
    f.cache.set(keyE, out);
    return out;
  }

  function errScaleNow() {
    if (view.errScale !== null && view.errScaleMode === view.error) return view.errScale;
    const maps = methods().map(errorMap).filter(Boolean);
    let s = 0.1;
    if (maps.length && view.error === "ssim") {
      const low = Math.min(...maps.map((m) => percentile(m, 0.5, false)));
      s = Math.min(0.9, Math.max(0, Math.floor(low / 0.05) * 0.05));
    } else if (maps.length) {
      const top = Math.max(...maps.map((m) => percentile(m, 99.5, true))) / unit();
      s = Math.min(1, Math.max(0.02, Math.ceil(top / 0.02) * 0.02));
    }
    view.errScale = s; view.errScaleMode = view.error;
    return s;
  }

  // ---------------------------------------------------------------------------------- bitmaps
  function bitmap(label, kind) {
    const f = frameNow(), n = H * W;
    let values, lut, lo, hi, signed = false, ssim = false;
    if (kind === "image") {
      values = f.data[label];
      [lo, hi] = windowNow();
      lut = null;
    } else {
      values = errorMap(label);
      if (!values) return null;
      const s = errScaleNow(), u = unit();
      lut = view.error === "signed" ? settings.luts.signed : settings.luts.error;
      if (view.error === "signed") { signed = true; lo = -s * u; hi = s * u; }
      else if (view.error === "ssim") { ssim = true; lo = s; hi = 1; }
      else { lo = 0; hi = s * u; }
    }
    const stamp = `${kind}|${label}|${lo}|${hi}|${view.invert}|${view.error}`;
    const cacheKey = `bmp|${kind}|${label}`;
    const cached = f.cache.get(cacheKey);
    if (cached && cached.stamp === stamp) return cached.canvas;
    const canvas = cached ? cached.canvas : document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext("2d");
    const imageData = ctx.createImageData(W, H), px = imageData.data, span = hi - lo || 1;
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      let t = (values[i] - lo) / span;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      if (lut) {
        if (ssim) t = 1 - t; // 1 (no error) is black, like |error| = 0
        const k = 3 * Math.round(t * 255);
        px[j] = lut[k]; px[j + 1] = lut[k + 1]; px[j + 2] = lut[k + 2];
      } else {
        let g = Math.round(t * 255);
        if (view.invert) g = 255 - g;
        px[j] = px[j + 1] = px[j + 2] = g;
      }
      px[j + 3] = 255;
    }
    ctx.putImageData(imageData, 0, 0);
    f.cache.set(cacheKey, {stamp, canvas});
    return canvas;
  }

  // ---------------------------------------------------------------------------------- layout
  let cells = []; // {label, kind: image|error|legend|thumb, canvas, size}
  let blinkTimer = null, blinkPhase = 0;

  function available() {
    const width = Math.max(240, root.clientWidth || parentElement.clientWidth || 960);
    const full = document.fullscreenElement === root;
    const height = Math.max(260, (full ? window.innerHeight : window.innerHeight * 0.86) - bar.offsetHeight - 48);
    return [width, height];
  }

  function build() {
    const t = now();
    stopBlink();
    stage.innerHTML = "";
    cells = [];
    const list = panels(), errorsOn = view.error !== "off", [AW, AH] = available(), gap = 6, aspect = H / W;
    if (view.selected >= list.length) view.selected = 0;
    const grid = (labels, cols, withErrors) => {
      const rows = Math.ceil(labels.length / cols), blocks = rows * (withErrors ? 2 : 1);
      const titleRoom = 34;
      const pw = Math.floor(Math.max(96, Math.min((AW - gap * (cols - 1)) / cols,
        ((AH - gap * (blocks - 1)) / blocks - titleRoom) / aspect)));
      const wrap = el("div", "mrxv-grid", stage);
      wrap.style.gridTemplateColumns = `repeat(${cols}, ${pw}px)`;
      for (let r = 0; r < rows; r++) {
        const row = labels.slice(r * cols, r * cols + cols);
        for (const label of row) addCell(wrap, label, "image", pw);
        for (let k = row.length; k < cols; k++) el("div", "mrxv-empty", wrap);
        if (withErrors) {
          for (const label of row) {
            if (errorMap(label)) addCell(wrap, label, "error", pw);
            else legend(wrap, pw);
          }
          for (let k = row.length; k < cols; k++) el("div", "mrxv-empty", wrap);
        }
      }
    };
    if (view.layout === "row") grid(list, list.length, errorsOn);
    else if (view.layout === "2xn") grid(list, Math.ceil(list.length / 2), errorsOn);
    else if (view.layout === "grid") grid(list, Math.max(1, Math.min(view.columns, list.length)), errorsOn);
    else if (view.layout === "large" || view.layout === "blink") {
      const label = list[view.selected];
      const thumbs = view.layout === "large" && list.length > 1;
      const thumbPx = thumbs ? Math.max(64, Math.min(120, Math.floor(AW / list.length) - gap)) : 0;
      const showErr = view.layout === "large" && errorsOn && errorMap(label);
      const cols = showErr ? 2 : 1;
      const pw = Math.floor(Math.max(160, Math.min((AW - gap * (cols - 1)) / cols,
        (AH - (thumbs ? thumbPx * aspect + 40 : 0) - 34) / aspect)));
      const wrap = el("div", "mrxv-grid", stage);
      wrap.style.gridTemplateColumns = `repeat(${cols}, ${pw}px)`;
      addCell(wrap, label, "image", pw, view.layout === "blink");
      if (showErr) addCell(wrap, label, "error", pw);
      if (thumbs) {
        const strip = el("div", "mrxv-thumbs", stage);
        list.forEach((l, i) => {
          const cell = addCell(strip, l, "thumb", thumbPx);
          cell.div.classList.toggle("mrxv-selected", i === view.selected);
          cell.div.addEventListener("click", () => { view.selected = i; build(); });
        });
      }
      if (view.layout === "blink") startBlink();
    }
    paint();
    perf.layouts.push(now() - t);
  }

  function legend(parent, pw) {
    const div = el("div", "mrxv-legend", parent);
    div.style.width = `${pw}px`;
    const c = el("canvas", "", div);
    c.width = 256; c.height = 12;
    const ctx = c.getContext("2d"), lut = view.error === "signed" ? settings.luts.signed : settings.luts.error;
    for (let i = 0; i < 256; i++) {
      const k = 3 * (view.error === "ssim" ? 255 - i : i);
      ctx.fillStyle = `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`;
      ctx.fillRect(i, 0, 1, 12);
    }
    const s = errScaleNow(), pct = (v) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`;
    const [a, b] = view.error === "signed" ? [`−${pct(s)}`, `+${pct(s)}`] : view.error === "ssim" ? ["1", s.toFixed(2)] : ["0", pct(s)];
    el("div", "mrxv-legend-text", div, `${ERROR_NAMES[view.error]}: ${a} … ${b}${view.error === "ssim" ? "" : " of the reference max"}`);
  }

  function addCell(parent, label, kind, pw, blink) {
    const div = el("div", `mrxv-cell mrxv-${kind}`, parent);
    const ph = Math.round(pw * H / W);
    const canvas = el("canvas", "", div);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(pw * ratio); canvas.height = Math.round(ph * ratio);
    canvas.style.width = `${pw}px`; canvas.style.height = `${ph}px`;
    const title = el("div", "mrxv-title", div);
    const sub = frameNow().subtitles[label];
    const name = kind === "error" ? (view.error === "pair" ? `${label}: ${settings.pair_name || "|difference|"}` :
      `${label}: ${ERROR_NAMES[view.error]}`) : label;
    title.textContent = name;
    title.title = sub ? `${name} · ${sub}` : name;
    if (sub && kind === "image") el("div", "mrxv-subtitle", div, sub).title = sub;
    const cell = {div, canvas, label, kind, pw, ph, blink, title};
    cells.push(cell);
    if (kind !== "thumb") attachPointer(cell);
    return cell;
  }

  // ---------------------------------------------------------------------------------- painting
  let pending = false;
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; paint(); }); } }

  function transform(cell) {
    const fit = cell.pw / W, s = cell.kind === "thumb" ? fit : fit * view.zoom;
    const cx = cell.kind === "thumb" ? W / 2 : view.cx, cy = cell.kind === "thumb" ? H / 2 : view.cy;
    return {s, tx: cell.pw / 2 - cx * s, ty: cell.ph / 2 - cy * s};
  }

  function paint() {
    const t = now();
    for (const cell of cells) {
      let label = cell.label;
      if (cell.blink) {
        const first = blinkFirst(label);
        label = blinkPhase ? label : first;
        cell.title.textContent = label;
      }
      const source = bitmap(label, cell.kind === "error" ? "error" : "image");
      const ratio = cell.canvas.width / cell.pw, ctx = cell.canvas.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cell.canvas.width, cell.canvas.height);
      if (!source) continue;
      const {s, tx, ty} = transform(cell);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.imageSmoothingEnabled = view.smooth;
      ctx.drawImage(source, tx, ty, W * s, H * s);
      overlays(ctx, cell, s, tx, ty);
    }
    readout();
    perf.paints.push(now() - t);
    if (perf.paints.length > 500) perf.paints.splice(0, 250);
  }

  function overlays(ctx, cell, s, tx, ty) {
    const rect = (r0, c0, r1, c1, color, dash) => {
      ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.setLineDash(dash || []);
      ctx.strokeRect(tx + c0 * s, ty + r0 * s, (c1 - c0) * s, (r1 - r0) * s);
      ctx.setLineDash([]);
    };
    (settings.boxes || []).forEach((b, i) => {
      rect(b[0], b[1], b[2], b[3], "#00e5ff", [4, 3]);
      const name = (settings.box_labels || [])[i];
      if (name && cell.kind !== "thumb") {
        ctx.fillStyle = "#00e5ff"; ctx.font = "11px sans-serif";
        ctx.fillText(name, tx + b[1] * s, Math.max(10, ty + b[0] * s - 3));
      }
    });
    const roi = drawing && drawing.kind === "roi" ? drawing.box : view.roi;
    if (roi) rect(roi[0], roi[1], roi[2], roi[3], "#1f6feb");
    const line = drawing && drawing.kind === "line" ? drawing.line : view.line;
    if (line) {
      ctx.strokeStyle = "#ffb000"; ctx.lineWidth = 1.5; ctx.beginPath();
      ctx.moveTo(tx + (line[1] + 0.5) * s, ty + (line[0] + 0.5) * s);
      ctx.lineTo(tx + (line[3] + 0.5) * s, ty + (line[2] + 0.5) * s);
      ctx.stroke();
    }
    if (view.mark && cell.kind !== "thumb") {
      const x = tx + (view.mark[1] + 0.5) * s, y = ty + (view.mark[0] + 0.5) * s;
      ctx.strokeStyle = "#ff4b4b"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.arc(x, y, 9, 0, 2 * Math.PI); ctx.moveTo(x - 14, y); ctx.lineTo(x - 5, y); ctx.moveTo(x + 5, y);
      ctx.lineTo(x + 14, y); ctx.moveTo(x, y - 14); ctx.lineTo(x, y - 5); ctx.moveTo(x, y + 5); ctx.lineTo(x, y + 14);
      ctx.stroke();
    }
    if (settings.pixel_mm && cell.kind === "image" && cell === cells.find((c) => c.kind === "image")) scaleBar(ctx, cell, s);
  }

  function scaleBar(ctx, cell, s) {
    const mmPerPx = settings.pixel_mm[1] / s; // screen px -> mm
    const target = 80 * mmPerPx;
    const nice = [1, 2, 5, 10, 20, 50, 100, 200].find((v) => v >= target * 0.6) || 200;
    const length = nice / mmPerPx, x = 10, y = cell.ph - 12;
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.beginPath();
    ctx.moveTo(x, y); ctx.lineTo(x + length, y); ctx.moveTo(x, y - 4); ctx.lineTo(x, y + 4);
    ctx.moveTo(x + length, y - 4); ctx.lineTo(x + length, y + 4); ctx.stroke();
    ctx.fillStyle = "#fff"; ctx.font = "11px sans-serif"; ctx.fillText(`${nice} mm`, x + length + 5, y + 4);
  }

  function readout() {
    const [lo, hi] = windowNow(), u = unit();
    const c = ((lo + hi) / 2 / u) * 100, w = ((hi - lo) / u) * 100;
    const f = frameNow(), sl = settings.slices;
    const parts = [`<span data-testid="mrxv-wl">C ${c.toFixed(1)}% · W ${w.toFixed(1)}%</span> of the reference max` +
      `${view.invert ? " · inverted" : ""}`, `zoom ${view.zoom.toFixed(2)}×`];
    if (sl && sl.count > 1) parts.push(`<span data-testid="mrxv-slice">slice ${f.slice + 1} / ${sl.count}</span>` +
      (view.wantSlice !== null && !stack.has(view.wantSlice) ? ` · computing slice ${view.wantSlice + 1}…` : ""));
    if (hover) parts.push(hover);
    status.innerHTML = parts.join(" &nbsp;|&nbsp; ");
    if (wlLabel) wlLabel.textContent = `C ${c.toFixed(0)}% W ${w.toFixed(0)}%`;
  }

  // ---------------------------------------------------------------------------------- blink
  function blinkFirst(label) {
    if (pairs[label]) return pairs[label];
    const ref = refLabel();
    if (ref && ref !== label) return ref;
    return panels().find((l) => l !== label) || label;
  }
  function startBlink() {
    blinkPhase = 1;
    blinkTimer = setInterval(() => { if (!view.paused) { blinkPhase = 1 - blinkPhase; paint(); } }, view.blinkMs);
  }
  function stopBlink() { if (blinkTimer) clearInterval(blinkTimer); blinkTimer = null; }

  // ---------------------------------------------------------------------------------- mouse
  let drag = null, drawing = null, hover = "";
  function imagePoint(cell, ev) {
    const r = cell.canvas.getBoundingClientRect(), {s, tx, ty} = transform(cell);
    return [(ev.clientY - r.top - ty) / s, (ev.clientX - r.left - tx) / s]; // (row, col), continuous
  }
  const clampPx = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));

  function attachPointer(cell) {
    const c = cell.canvas;
    c.addEventListener("contextmenu", (ev) => ev.preventDefault());
    c.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      c.setPointerCapture(ev.pointerId);
      const tool = ev.button === 2 ? "wl" : ev.button === 1 ? "pan" : view.tool;
      const [row, col] = imagePoint(cell, ev);
      drag = {tool, x: ev.clientX, y: ev.clientY, window: windowNow(), zoom: view.zoom, cx: view.cx, cy: view.cy, cell,
              row, col};
      if (tool === "roi") drawing = {kind: "roi", box: null};
      if (tool === "mark") drawing = {kind: "mark"};
      if (tool === "line") drawing = {kind: "line", line: null};
    });
    c.addEventListener("pointermove", (ev) => {
      const [row, col] = imagePoint(cell, ev);
      if (row >= 0 && col >= 0 && row < H && col < W) {
        const v = cell.kind === "error" ? errorMap(cell.label) : frameNow().data[cell.label];
        const r = Math.floor(row), k = Math.floor(col), value = v ? v[r * W + k] : NaN;
        hover = cell.kind === "error" && view.error === "ssim" ? `(${r}, ${k}) local SSIM ${value.toFixed(3)}` :
          `(${r}, ${k}) ${((value / unit()) * 100).toFixed(2)}% of the reference max`;
      } else hover = "";
      if (!drag) { readout(); return; }
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (drag.tool === "wl") {
        const u = unit(), [lo, hi] = drag.window, c0 = (lo + hi) / 2, w0 = hi - lo;
        const w1 = Math.max(u * 1e-3, w0 + (dx / 400) * u), c1 = c0 + (dy / 400) * u;
        setWindow(c1 - w1 / 2, c1 + w1 / 2);
        view.presetLabel = "custom";
        refreshImages();
      } else if (drag.tool === "pan") {
        const s = (drag.cell.pw / W) * view.zoom;
        view.cx = drag.cx - dx / s; view.cy = drag.cy - dy / s; schedule();
      } else if (drag.tool === "zoom") {
        view.zoom = Math.min(40, Math.max(0.25, drag.zoom * Math.exp(-dy / 150))); schedule();
      } else if (drag.tool === "roi") {
        const r0 = clampPx(Math.min(drag.row, row), H), r1 = clampPx(Math.max(drag.row, row), H) + 1;
        const c0 = clampPx(Math.min(drag.col, col), W), c1 = clampPx(Math.max(drag.col, col), W) + 1;
        drawing.box = [r0, c0, r1, c1]; schedule();
      } else if (drag.tool === "line") {
        drawing.line = [clampPx(drag.row, H), clampPx(drag.col, W), clampPx(row, H), clampPx(col, W)]; schedule();
      }
    });
    const end = () => {
      if (drawing && drawing.kind === "mark" && drag) {
        const r = clampPx(drag.row, H), k = clampPx(drag.col, W);
        view.mark = [r, k];
        st.clicks = (st.clicks || 0) + 1;  // a trigger: a second click on the same pixel is reported too
        setTriggerValue("point", {row: r, col: k, panel: drag.cell.label, click: st.clicks});
      } else if (drawing && drawing.kind === "roi" && drawing.box) {
        view.roi = drawing.box;
        setStateValue("roi", {box: drawing.box, window: windowNow(), error: view.error, scale: errScaleNow() * unit()});
      } else if (drawing && drawing.kind === "line" && drawing.line) {
        const l = drawing.line;
        if (l[0] !== l[2] || l[1] !== l[3]) {
          view.line = l;
          setStateValue("line", {line: l});
        }
      }
      drag = null; drawing = null; schedule();
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => { hover = ""; readout(); });
    c.addEventListener("dblclick", () => { view.zoom = 1; view.cx = W / 2; view.cy = H / 2; schedule(); });
    c.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const sl = settings.slices;
      if (!ev.ctrlKey && sl && sl.count > 1) { stepSlice(ev.deltaY > 0 ? 1 : -1); return; }
      const [row, col] = imagePoint(cell, ev), factor = Math.exp(-ev.deltaY / 300);
      const z = Math.min(40, Math.max(0.25, view.zoom * factor)), k = view.zoom / z;
      view.cx = col + (view.cx - col) * k; view.cy = row + (view.cy - row) * k; view.zoom = z; schedule();
    }, {passive: false});
  }

  function refreshImages() { schedule(); }

  // ---------------------------------------------------------------------------------- slices
  function stepSlice(delta) {
    const sl = settings.slices;
    if (!sl || sl.count < 2) return;
    const from = view.wantSlice !== null ? view.wantSlice : frameNow().slice;
    const to = Math.min(sl.count - 1, Math.max(0, from + delta));
    if (to === from) return;
    const t = now();
    view.wantSlice = to;
    if (stack.has(to)) { build(); perf.slices.push(now() - t); }
    else readout();
    setTriggerValue("slice", to);
  }

  // ---------------------------------------------------------------------------------- keys
  function onKey(ev) {
    if (ev.target && ev.target !== root && /INPUT|SELECT|TEXTAREA/.test(ev.target.tagName)) return;
    const list = panels(), k = ev.key;
    if ((settings.keys || []).includes(k)) { ev.preventDefault(); ev.stopPropagation(); setTriggerValue("key", k); return; }
    let handled = true;
    if (k === "ArrowRight" || k === "ArrowLeft") {
      view.selected = (view.selected + (k === "ArrowRight" ? 1 : list.length - 1)) % list.length;
      if (view.layout !== "large" && view.layout !== "blink") view.layout = "large";
      build(); syncBar();
    } else if (k === "ArrowDown" || k === "PageDown") stepSlice(1);
    else if (k === "ArrowUp" || k === "PageUp") stepSlice(-1);
    else if (k === "f") { view.layout = view.layout === "large" ? "row" : "large"; build(); syncBar(); }
    else if (k === "b") { view.layout = view.layout === "blink" ? "row" : "blink"; if (view.layout === "blink" && view.selected === 0 && list.length > 1 && refLabel()) view.selected = 1; build(); syncBar(); }
    else if (k === "g") { view.layout = "row"; build(); syncBar(); }
    else if (k === "e") { const m = errorModes(); view.error = m[(m.indexOf(view.error) + 1) % m.length]; build(); syncBar(); }
    else if (k === "i") { view.invert = !view.invert; schedule(); syncBar(); }
    else if (k === "r") { view.zoom = 1; view.cx = W / 2; view.cy = H / 2; view.wl = null; view.preset = "full"; view.invert = false; schedule(); syncBar(); }
    else if (k === "1" || k === "2" || k === "3") { view.preset = ["full", "tissue", "auto"][+k - 1]; view.wl = null; schedule(); syncBar(); }
    else if (k === "+" || k === "=") { view.zoom = Math.min(40, view.zoom * 1.25); schedule(); }
    else if (k === "-" || k === "_") { view.zoom = Math.max(0.25, view.zoom / 1.25); schedule(); }
    else if (k === " ") { view.paused = !view.paused; }
    else if (k === "?") { view.help = !view.help; help.style.display = view.help ? "block" : "none"; }
    else if ("wpzol".includes(k) && k.length === 1) { view.tool = {w: "wl", p: "pan", z: "zoom", o: "roi", l: "line"}[k]; syncBar(); }
    else handled = false;
    if (handled) { ev.preventDefault(); ev.stopPropagation(); }
  }
  root.addEventListener("keydown", onKey);
  root.addEventListener("focus", () => { st.focused = true; });
  root.addEventListener("blur", () => { st.focused = false; });
  // Keys the page asked for also work while nothing else has the focus (e.g. right after a rerun).
  const onPageKey = (ev) => {
    const t = ev.target;
    if (ev.defaultPrevented || !(settings.keys || []).includes(ev.key)) return;
    if (t && t !== document.body && t !== document.documentElement) return;
    ev.preventDefault();
    setTriggerValue("key", ev.key);
  };
  if ((settings.keys || []).length) document.addEventListener("keydown", onPageKey);
  root.addEventListener("pointerenter", () => {
    const a = document.activeElement;
    if (!a || a === document.body || root.contains(a) || (a.shadowRoot && a.shadowRoot.contains(root))) root.focus({preventScroll: true});
  });

  // ---------------------------------------------------------------------------------- toolbar
  let wlLabel = null;
  const controls = {};
  function group(name, parent) { const g = el("div", "mrxv-group", parent || bar); el("span", "mrxv-label", g, name); return g; }
  function buttons(name, options, get, set, testid) {
    const g = group(name), bs = [];
    for (const [value, text] of options) {
      const b = el("button", "mrxv-btn", g, text);
      b.type = "button";
      b.dataset.value = value;
      if (testid) b.setAttribute("data-testid", `${testid}-${value}`);
      b.addEventListener("click", () => { set(value); syncBar(); root.focus({preventScroll: true}); });
      bs.push(b);
    }
    controls[name] = () => bs.forEach((b) => b.classList.toggle("mrxv-on", b.dataset.value === String(get())));
    return g;
  }
  buttons("Layout", LAYOUTS, () => view.layout, (v) => {
    view.layout = v;
    if (v === "blink" && view.selected === 0 && panels().length > 1 && refLabel()) view.selected = 1;
    build();
  }, "mrxv-layout");
  const colGroup = group("Columns");
  const colInput = el("input", "mrxv-num", colGroup);
  colInput.type = "number"; colInput.min = 1; colInput.max = panels().length; colInput.value = view.columns;
  colInput.setAttribute("data-testid", "mrxv-columns");
  colInput.addEventListener("change", () => { view.columns = Math.max(1, Math.min(panels().length, +colInput.value || 1)); view.layout = "grid"; build(); syncBar(); });
  const modes = errorModes();
  if (modes.length > 1) {
    buttons("Error map", modes.map((m) => [m, m === "pair" ? (settings.pair_name || ERROR_NAMES.pair) : ERROR_NAMES[m]]),
      () => view.error, (v) => { view.error = v; build(); }, "mrxv-error");
    const g = group("Error scale");
    const range = el("input", "mrxv-range", g);
    range.type = "range"; range.min = 0; range.max = 100; range.setAttribute("data-testid", "mrxv-errscale");
    controls.errRange = () => {
      range.disabled = view.error === "off";
      range.value = view.error === "ssim" ? Math.round(errScaleNow() * 100) : Math.round(Math.sqrt(errScaleNow()) * 100);
    };
    range.addEventListener("input", () => {
      const v = +range.value / 100;
      view.errScale = view.error === "ssim" ? Math.min(0.95, v) : Math.max(0.0001, v * v);
      view.errScaleMode = view.error;
      build();
    });
  }
  buttons("Window", Object.entries(PRESET_NAMES).filter(([p]) => frameNow().windows[p]), () => (view.wl ? "" : view.preset),
    (v) => { view.preset = v; view.wl = null; schedule(); }, "mrxv-preset");
  const wlGroup = group("W/L");
  wlLabel = el("span", "mrxv-wlvalue", wlGroup);
  const inv = el("button", "mrxv-btn", wlGroup, "Invert");
  inv.type = "button"; inv.setAttribute("data-testid", "mrxv-invert");
  inv.addEventListener("click", () => { view.invert = !view.invert; schedule(); syncBar(); });
  controls.invert = () => inv.classList.toggle("mrxv-on", view.invert);
  const reset = el("button", "mrxv-btn", wlGroup, "Reset");
  reset.type = "button"; reset.setAttribute("data-testid", "mrxv-reset");
  reset.addEventListener("click", () => { view.zoom = 1; view.cx = W / 2; view.cy = H / 2; view.wl = null; view.preset = "full"; view.invert = false; schedule(); syncBar(); });
  buttons("Left drag", settings.mark ? [["mark", "Mark"], ...TOOLS] : TOOLS, () => view.tool, (v) => { view.tool = v; },
    "mrxv-tool");
  const sl = settings.slices;
  if (sl && sl.count > 1) {
    const g = group("Slice");
    const prev = el("button", "mrxv-btn", g, "◀"), next = el("button", "mrxv-btn", g, "▶");
    prev.type = next.type = "button";
    prev.setAttribute("data-testid", "mrxv-slice-prev"); next.setAttribute("data-testid", "mrxv-slice-next");
    prev.addEventListener("click", () => stepSlice(-1)); next.addEventListener("click", () => stepSlice(1));
  }
  const more = group("");
  const blinkMs = el("select", "mrxv-select", more);
  for (const ms of [250, 400, 600, 800, 1200]) { const o = el("option", "", blinkMs, `blink ${ms} ms`); o.value = ms; }
  blinkMs.value = view.blinkMs;
  blinkMs.addEventListener("change", () => { view.blinkMs = +blinkMs.value; if (view.layout === "blink") build(); });
  const smooth = el("button", "mrxv-btn", more, "Smooth");
  smooth.type = "button"; smooth.title = "Interpolate when magnified (off: one block per pixel, for reading fine detail)";
  smooth.addEventListener("click", () => { view.smooth = !view.smooth; schedule(); syncBar(); });
  controls.smooth = () => smooth.classList.toggle("mrxv-on", view.smooth);
  const png = el("button", "mrxv-btn", more, "PNG");
  png.type = "button"; png.title = "Save the panels as one PNG";
  png.addEventListener("click", savePng);
  const fs = el("button", "mrxv-btn", more, "Full screen");
  fs.type = "button"; fs.title = "Full screen (Esc leaves)";
  fs.addEventListener("click", () => (document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen()));
  const q = el("button", "mrxv-btn", more, "?");
  q.type = "button"; q.title = "Keys and mouse";
  q.addEventListener("click", () => { view.help = !view.help; help.style.display = view.help ? "block" : "none"; });
  help.style.display = view.help ? "block" : "none";

  function syncBar() {
    for (const f of Object.values(controls)) f();
    colInput.value = view.columns;
    readout();
  }

  function savePng() {
    const shown = cells.filter((c) => c.kind !== "thumb");
    if (!shown.length) return;
    const boxes = shown.map((c) => c.canvas.getBoundingClientRect()), x0 = Math.min(...boxes.map((b) => b.left)),
      y0 = Math.min(...boxes.map((b) => b.top)), x1 = Math.max(...boxes.map((b) => b.right)),
      y1 = Math.max(...boxes.map((b) => b.bottom)), ratio = window.devicePixelRatio || 1;
    const out = document.createElement("canvas");
    out.width = Math.round((x1 - x0) * ratio); out.height = Math.round((y1 - y0 + 16) * ratio);
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, out.width, out.height);
    shown.forEach((c, i) => {
      const b = boxes[i];
      ctx.drawImage(c.canvas, (b.left - x0) * ratio, (b.top - y0 + 16) * ratio, b.width * ratio, b.height * ratio);
      ctx.fillStyle = "#000"; ctx.font = `${11 * ratio}px sans-serif`;
      ctx.fillText(c.title.textContent, (b.left - x0 + 2) * ratio, (b.top - y0 + 12) * ratio);
    });
    const a = document.createElement("a");
    a.download = `${settings.filename || "viewer"}.png`; a.href = out.toDataURL("image/png"); a.click();
  }

  // ---------------------------------------------------------------------------------- go
  view.mark = settings.point || null;
  view.roi = settings.roi || null;
  view.line = settings.line || null;
  const zoomStamp = settings.zoom_roi && view.roi ? JSON.stringify(view.roi) : null;
  if (zoomStamp && zoomStamp !== view.zoomedTo) {
    const [r0, c0, r1, c1] = view.roi, span = Math.max((r1 - r0) / H, (c1 - c0) / W) * 1.5;
    view.zoom = Math.min(40, Math.max(1, 1 / span)); view.cx = (c0 + c1) / 2; view.cy = (r0 + r1) / 2;
  }
  view.zoomedTo = zoomStamp;
  build();
  syncBar();
  st.lastWidth = root.clientWidth;
  const resize = new ResizeObserver(() => { if (Math.abs((root.clientWidth || 0) - (st.lastWidth || 0)) > 4) { st.lastWidth = root.clientWidth; build(); } });
  resize.observe(root);
  const onFs = () => build();
  document.addEventListener("fullscreenchange", onFs);
  root.dataset.ready = "1";
  root.dataset.renderMs = String(Math.round(now() - t0));
  if (hadFocus) root.focus({preventScroll: true});
  return () => {
    stopBlink();
    document.removeEventListener("keydown", onPageKey);
    resize.disconnect();
    document.removeEventListener("fullscreenchange", onFs);
  };
}
