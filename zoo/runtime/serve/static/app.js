// The page of zoo serve: choose a model, drop or pick an image, see the top-k as bars.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadModels() {
  const answer = await fetch("/v1/models", { headers: headers() });
  const body = await answer.json();
  if (!answer.ok) { setStatus(body.error || answer.statusText, true); return; }
  models = body.models;
  const select = $("model");
  select.replaceChildren();
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.input_size.join("x")}, version ${m.version})`;
    select.append(option);
  }
  showNote();
  setStatus("Ready: " + models.length + " model(s).", false);
}

function showNote() {
  const m = models.find((x) => x.name === $("model").value);
  $("model-note").textContent = m && m.generic
    ? "This file has no zoo metadata: guessed " + m.guessed.join(", ") + "." : "";
}

function showResults(body) {
  const box = $("results");
  box.replaceChildren();
  for (const entry of body.top || body.labels) {
    const row = document.createElement("div");
    row.className = "row result";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entry.label;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * entry.probability).toFixed(1) + "%";
    track.append(bar);
    const value = document.createElement("span");
    value.textContent = (100 * entry.probability).toFixed(1) + "%";
    row.append(label, track, value);
    box.append(row);
  }
  const t = body.timing_ms;
  setStatus(`${body.model}: ${t.total.toFixed(1)} ms (decode ${t.decode.toFixed(1)}, model ${t.inference.toFixed(1)})`, false);
}

async function predict(file) {
  if (!file) return;
  $("preview").src = URL.createObjectURL(file);
  $("preview").style.display = "block";
  const name = $("model").value;
  if (!name) { setStatus("No model to ask: load the page again.", true); return; }
  setStatus("Asking " + name + "…", false);
  const form = new FormData();
  form.append("file", file);
  try {
    const answer = await fetch(`/v1/models/${encodeURIComponent(name)}/predict?top_k=5`,
      { method: "POST", body: form, headers: headers() });
    const body = await answer.json();
    if (!answer.ok) { $("results").replaceChildren(); setStatus(`${answer.status}: ${body.error}`, true); return; }
    showResults(body);
  } catch (err) {
    setStatus("The server did not answer: " + err, true);
  }
}

$("model").addEventListener("change", showNote);
$("token").addEventListener("change", loadModels);
$("drop").addEventListener("click", (e) => { if (e.target.id !== "file") $("file").click(); });
$("file").addEventListener("change", () => predict($("file").files[0]));
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  predict(e.dataTransfer.files[0]);
});
loadModels().catch((err) => setStatus("Cannot list the models: " + err, true));
