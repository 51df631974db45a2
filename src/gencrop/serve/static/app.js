// gencrop's page: upload photos to /v1/crop, draw the answer, let the subject be redrawn, cut and download crops.
// Crops are cut here from the photo the browser already has (no second upload); the server's boxes are in
// the upright photo's pixels, which is how browsers draw photos (EXIF orientation applied). Paths are
// relative, so the page also works behind a proxy under a sub-path.
"use strict";

const state = {
  photos: [],
  apiKey: sessionStorage.getItem("gencrop-api-key") || "",
};
const MAX_CANVAS_SIDE = 1400;  // drawing resolution of the photo view
const BUSY_RETRIES = 3;

const $ = (sel, root = document) => root.querySelector(sel);

function selectedShapes() {
  const shapes = [];
  for (const box of document.querySelectorAll("input[name=shape]:checked")) {
    if (box.value === "custom") {
      const w = parseInt($("#custom-w").value, 10);
      const h = parseInt($("#custom-h").value, 10);
      if (w > 0 && h > 0) shapes.push(`${w}x${h}`);
    } else {
      shapes.push(box.value);
    }
  }
  return shapes.length ? shapes : ["free"];
}

function showMessage(text) { $("#message").textContent = text || ""; }

// -- talking to the API -----------------------------------------------------------------------
function authHeaders() {
  // header values are bytes: send the key's UTF-8 bytes, one character each, so any key can be typed
  const bytes = new TextEncoder().encode(state.apiKey);
  return state.apiKey ? { Authorization: "Bearer " + String.fromCharCode(...bytes) } : {};
}

async function recrop(photo, attempt = 0) {
  const seq = ++photo.seq;
  photo.card.classList.add("busy");
  setStatus(photo, "cropping…");
  const query = new URLSearchParams();
  const shapes = selectedShapes();
  for (const shape of shapes) query.append("aspect", shape);
  // only a subject the user drew is sent as given: a found one is found again, so the crops stay those
  // of the found subject (the server keeps a given subject inside the crop, a found one it does not)
  if (photo.subject) query.set("subject", photo.subject.map((v) => Math.round(v)).join(","));
  query.set("heatmap", "true");
  const body = new FormData();
  body.append("photo", photo.file, photo.file.name);
  let res, data;
  try {
    res = await fetch("v1/crop?" + query, { method: "POST", body, headers: authHeaders() });
    data = await res.json();
  } catch (err) {
    if (seq === photo.seq) failed(photo, "no answer from the server (" + err.message + ")");
    return;
  }
  if (seq !== photo.seq) return;  // a newer request for this photo is on its way
  if (!res.ok) {
    if (res.status === 401) $("#key-row").hidden = false;
    if ((res.status === 429 || res.status === 503) && attempt < BUSY_RETRIES) {
      const wait = parseFloat(res.headers.get("Retry-After") || "1");
      setStatus(photo, `server busy, retrying in ${wait} s…`);
      setTimeout(() => { if (seq === photo.seq) recrop(photo, attempt + 1); }, wait * 1000);
      return;
    }
    failed(photo, data && data.error ? data.error : res.statusText);
    return;
  }
  photo.card.classList.remove("busy");
  photo.result = data;
  photo.shapes = shapes;  // what each crop was asked as ("1:1"; its name "1x1" would read as a size)
  photo.requests += 1;
  photo.active = Math.min(photo.active, data.crops.length - 1);
  photo.heat = null;
  if (data.heatmap) {
    const heat = new Image();
    heat.onload = () => { if (photo.result === data) { photo.heat = heat; draw(photo); } };
    heat.src = data.heatmap.image;
  }
  const t = data.timings;
  const how = data.subject_source === "given" ? "your subject" : foundSubject(data);
  const caption = $(".heat-caption", photo.card);
  caption.textContent = data.heatmap ? data.heatmap.caption : "";
  caption.hidden = !data.heatmap || !$("#show-heatmap").checked;
  setStatus(photo, `${data.size[0]}×${data.size[1]} px · ${how} · ${Math.round(t.total_ms)} ms`);
  draw(photo);
  renderCrops(photo);
  updateDownloadAll();
}

function foundSubject(data) {
  const what = data.subject_class || data.subject_source;
  const sure = data.subject_score != null ? ` ${data.subject_score.toFixed(2)}` : "";
  return `subject found: ${what}${sure}, ${data.subject_kept ? "kept in the crop" : "not kept"}`;
}

function failed(photo, text) {
  photo.card.classList.remove("busy");
  setStatus(photo, text, true);
}

function setStatus(photo, text, isError = false) {
  const el = $(".status", photo.card);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// -- drawing -----------------------------------------------------------------------------------
function photoSize(photo) {
  if (photo.result) return photo.result.size;
  if (photo.imgOk) return [photo.img.naturalWidth, photo.img.naturalHeight];
  return [4, 3];
}

function draw(photo) {
  const canvas = photo.canvas;
  const [W, H] = photoSize(photo);
  const s = Math.min(1, MAX_CANVAS_SIDE / Math.max(W, H));
  canvas.width = Math.max(1, Math.round(W * s));
  canvas.height = Math.max(1, Math.round(H * s));
  const ctx = canvas.getContext("2d");
  const k = canvas.width / W;
  if (photo.imgOk) ctx.drawImage(photo.img, 0, 0, canvas.width, canvas.height);
  const r = photo.result;
  if (r) {
    if (photo.heat && $("#show-heatmap").checked) {
      const [hx, hy, hw, hh] = r.heatmap.box;
      ctx.save();
      ctx.globalAlpha = 0.5;
      ctx.imageSmoothingEnabled = false;  // one colour per cell: the cells are what the model weighs
      ctx.drawImage(photo.heat, hx * k, hy * k, hw * k, hh * k);
      ctx.restore();
    }
    const [cx, cy, cw, ch] = r.crops[photo.active].box;
    ctx.save();
    ctx.fillStyle = "rgba(0, 0, 0, 0.45)";
    ctx.beginPath();
    ctx.rect(0, 0, canvas.width, canvas.height);
    ctx.rect(cx * k, cy * k, cw * k, ch * k);
    ctx.fill("evenodd");
    ctx.restore();
    const width = Math.max(2, Math.round(canvas.width / 300));
    strokeBox(ctx, r.subject.map((v) => v * k), "rgb(0, 200, 255)", width);
    strokeBox(ctx, [cx * k, cy * k, cw * k, ch * k], "rgb(255, 140, 0)", width + 1);
    photo.card.dataset.crop = r.crops[photo.active].box.join(",");
    photo.card.dataset.shape = r.crops[photo.active].shape;
    photo.card.dataset.output = r.crops[photo.active].output_size.join("x");
    photo.card.dataset.subject = r.subject.join(",");
    photo.card.dataset.requests = String(photo.requests);
  }
  if (photo.drag) {
    const [x, y, w, h] = dragBox(photo.drag);
    ctx.save();
    ctx.setLineDash([8, 6]);
    strokeBox(ctx, [x * k, y * k, w * k, h * k], "rgb(0, 200, 255)", 3);
    ctx.restore();
  }
}

function strokeBox(ctx, [x, y, w, h], colour, width) {
  ctx.lineWidth = width;
  ctx.strokeStyle = colour;
  ctx.strokeRect(x + width / 2, y + width / 2, Math.max(0, w - width), Math.max(0, h - width));
}

// -- redrawing the subject -------------------------------------------------------------------
function toPhoto(photo, event) {
  const rect = photo.canvas.getBoundingClientRect();
  const [W, H] = photoSize(photo);
  const x = ((event.clientX - rect.left) / rect.width) * W;
  const y = ((event.clientY - rect.top) / rect.height) * H;
  return [Math.min(Math.max(x, 0), W), Math.min(Math.max(y, 0), H)];
}

function dragBox(drag) {
  const [x1, y1] = drag.from;
  const [x2, y2] = drag.to;
  return [Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1)];
}

function attachDrawing(photo) {
  const canvas = photo.canvas;
  canvas.addEventListener("pointerdown", (e) => {
    if (!photo.result) return;
    canvas.setPointerCapture(e.pointerId);
    const p = toPhoto(photo, e);
    photo.drag = { from: p, to: p };
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!photo.drag) return;
    photo.drag.to = toPhoto(photo, e);
    draw(photo);
  });
  const finish = (e) => {
    if (!photo.drag) return;
    photo.drag.to = toPhoto(photo, e);
    const box = dragBox(photo.drag);
    photo.drag = null;
    const [W] = photoSize(photo);
    if (box[2] * 100 >= W && box[3] * 100 >= W) {  // ignore clicks and slips
      photo.subject = box;
      recrop(photo);
    } else {
      draw(photo);
    }
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", () => { photo.drag = null; draw(photo); });
}

// -- crops: cut, show, download --------------------------------------------------------------
function fileStem(name) { return name.replace(/\.[^.]*$/, "") || "photo"; }
function outputType(photo) { return photo.file.type === "image/png" ? ["image/png", "png"] : ["image/jpeg", "jpg"]; }

function cutCanvas(photo, crop, maxSide) {
  const [W] = photo.result.size;
  const f = photo.img.naturalWidth / W;  // in case the browser decoded another size
  let [ow, oh] = crop.output_size;
  if (maxSide) {
    const s = Math.min(1, maxSide / Math.max(ow, oh));
    ow = Math.max(1, Math.round(ow * s));
    oh = Math.max(1, Math.round(oh * s));
  }
  const canvas = document.createElement("canvas");
  canvas.width = ow;
  canvas.height = oh;
  const [x, y, w, h] = crop.box;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(photo.img, x * f, y * f, w * f, h * f, 0, 0, ow, oh);
  return canvas;
}

async function cropBlob(photo, index) {
  const crop = photo.result.crops[index];
  const [type] = outputType(photo);
  if (photo.imgOk) {
    return new Promise((resolve) => cutCanvas(photo, crop).toBlob(resolve, type, 0.92));
  }
  // the browser cannot show this photo (e.g. TIFF): the server cuts it
  const query = new URLSearchParams({ aspect: photo.shapes[index], output: "jpeg" });
  if (photo.subject) query.set("subject", photo.subject.map((v) => Math.round(v)).join(","));  // as shown
  const body = new FormData();
  body.append("photo", photo.file, photo.file.name);
  const res = await fetch("v1/crop?" + query, { method: "POST", body, headers: authHeaders() });
  if (!res.ok) throw new Error((await res.json()).error);
  return res.blob();
}

function cropFileName(photo, index) {
  const ext = photo.imgOk ? outputType(photo)[1] : "jpg";
  return `${fileStem(photo.file.name)}_${photo.result.crops[index].shape}.${ext}`;
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function renderCrops(photo) {
  const holder = $(".crops", photo.card);
  holder.replaceChildren();
  photo.result.crops.forEach((crop, i) => {
    const item = document.createElement("div");
    item.className = "crop" + (i === photo.active ? " active" : "");
    item.dataset.shape = crop.shape;
    if (photo.imgOk) {
      const thumb = document.createElement("img");
      thumb.alt = `${crop.shape} crop`;
      thumb.src = cutCanvas(photo, crop, 300).toDataURL("image/jpeg", 0.85);
      item.appendChild(thumb);
    }
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = `${crop.shape} · ${crop.output_size[0]}×${crop.output_size[1]}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "download";
    button.textContent = "Download";
    button.addEventListener("click", async (e) => {
      e.stopPropagation();
      try { save(await cropBlob(photo, i), cropFileName(photo, i)); }
      catch (err) { setStatus(photo, "download failed: " + err.message, true); }
    });
    item.append(label, button);
    item.addEventListener("click", () => { photo.active = i; draw(photo); renderCrops(photo); });
    holder.appendChild(item);
  });
}

function updateDownloadAll() {
  $("#download-all").disabled = !state.photos.some((p) => p.result);
}

async function downloadAll() {
  const files = [];
  const used = new Set();
  for (const photo of state.photos) {
    if (!photo.result) continue;
    for (let i = 0; i < photo.result.crops.length; i++) {
      let name = cropFileName(photo, i);
      for (let n = 2; used.has(name); n++) name = name.replace(/(\.[^.]+)$/, `-${n}$1`);
      used.add(name);
      const blob = await cropBlob(photo, i);
      files.push({ name, bytes: new Uint8Array(await blob.arrayBuffer()) });
    }
  }
  if (files.length) save(makeZip(files), "gencrop-crops.zip");
}

// -- adding photos -----------------------------------------------------------------------------
function addPhotos(fileList) {
  const files = [...fileList].filter((f) => f.type.startsWith("image/") || /\.(jpe?g|png|webp|bmp|tiff?|gif)$/i.test(f.name));
  if (!files.length) { showMessage("Those are not photos: choose JPEG, PNG, WebP, BMP, TIFF or GIF files."); return; }
  showMessage("");
  for (const file of files) {
    const card = $("#photo-card").content.firstElementChild.cloneNode(true);
    $(".name", card).textContent = file.name;
    const photo = { file, card, canvas: $(".view", card), img: new Image(), imgOk: false, result: null,
      heat: null, subject: null, active: 0, seq: 0, requests: 0, drag: null };
    card.dataset.requests = "0";
    attachDrawing(photo);
    $(".auto", card).addEventListener("click", () => { photo.subject = null; recrop(photo); });
    photo.img.onload = () => { photo.imgOk = true; draw(photo); if (photo.result) renderCrops(photo); };
    photo.img.onerror = () => setStatus(photo, "this browser cannot show this photo; the server still crops it");
    photo.img.src = URL.createObjectURL(file);
    state.photos.push(photo);
    $("#photos").appendChild(card);
    recrop(photo);
  }
}

function recropAll() { for (const photo of state.photos) recrop(photo); }

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function setup() {
  const input = $("#files");
  input.addEventListener("change", () => { addPhotos(input.files); input.value = ""; });
  const drop = $("#drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) addPhotos(e.dataTransfer.files);
  });
  for (const box of document.querySelectorAll("input[name=shape]")) box.addEventListener("change", recropAll);
  const customChanged = debounce(() => { if ($("#custom-on").checked) recropAll(); }, 400);
  $("#custom-w").addEventListener("input", customChanged);
  $("#custom-h").addEventListener("input", customChanged);
  $("#show-heatmap").addEventListener("change", () => state.photos.forEach((photo) => {
    $(".heat-caption", photo.card).hidden = !(photo.result && photo.result.heatmap) || !$("#show-heatmap").checked;
    draw(photo);
  }));
  $("#download-all").addEventListener("click", downloadAll);
  $("#api-key").value = state.apiKey;
  $("#key-retry").addEventListener("click", () => {
    state.apiKey = $("#api-key").value.trim();
    sessionStorage.setItem("gencrop-api-key", state.apiKey);
    $("#key-row").hidden = true;
    recropAll();
  });
}

setup();
