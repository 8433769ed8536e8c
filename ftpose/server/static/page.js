// The ftpose page: sends a photo (or webcam frames) to POST /predict and draws the answer.
"use strict";

const $ = (id) => document.getElementById(id);
const photo = $("photo"), video = $("video"), layer = $("layer"), overlay = $("overlay");
let layouts = null;        // from GET /models: keypoint names and skeletons
let lastPhoto = null;      // the last uploaded photo (a Blob), re-sent when a map layer is asked for
let lastResult = null;
let webcam = null;         // the MediaStream while the webcam runs

function chosenLayer() {
  return document.querySelector("input[name=layer]:checked").value;
}

function showError(message) {
  $("error").textContent = message ? "error: " + message : "";
}

// The same colours as ftpose.visualize.person_colour: hues a golden ratio apart.
function personColour(index) {
  const hue = ((0.1 + index * 0.618033988749895) % 1) * 360;
  return `hsl(${hue}, 100%, 57%)`;
}

function draw(result) {
  overlay.width = result.width;
  overlay.height = result.height;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  let joints = 0;
  if ($("skeletons").checked && layouts) {
    const skeleton = layouts.coco17.skeleton;
    const width = Math.max(2, Math.round(Math.max(result.width, result.height) / 250));
    result.people.forEach((person, index) => {
      const points = person.coco17;
      ctx.strokeStyle = ctx.fillStyle = personColour(index);
      ctx.lineWidth = width;
      for (const [a, b] of skeleton) {
        if (points[a][2] > 0 && points[b][2] > 0) {
          ctx.beginPath();
          ctx.moveTo(points[a][0], points[a][1]);
          ctx.lineTo(points[b][0], points[b][1]);
          ctx.stroke();
        }
      }
      for (const [x, y, c] of points) {
        if (c > 0) {
          ctx.beginPath();
          ctx.arc(x, y, width + 1, 0, 2 * Math.PI);
          ctx.fill();
          joints += 1;
        }
      }
    });
  }
  overlay.dataset.joints = String(joints);
}

function showLayer() {
  const kind = chosenLayer();
  const maps = lastResult && lastResult.maps;
  if (kind === "none" || !maps) {
    layer.classList.add("hidden");
    return;
  }
  layer.src = maps[kind];
  layer.classList.remove("hidden");
}

function show(result) {
  lastResult = result;
  draw(result);
  showLayer();
  const count = $("count");
  count.textContent = `${result.count} ${result.count === 1 ? "person" : "people"}`;
  count.dataset.count = String(result.count);
  const t = result.timing_ms;
  $("timing").textContent = `network ${t.network} ms, grouping ${t.grouping} ms` +
    (t.maps !== undefined ? `, maps ${t.maps} ms` : "") + `, total ${t.total} ms on the server`;
  document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
}

async function predict(blob, filename) {
  const form = new FormData();
  form.append("image", blob, filename);
  const query = new URLSearchParams({ min_score: $("min-score").value || "0" });
  if (chosenLayer() !== "none") query.set("maps", "1");
  const response = await fetch("/predict?" + query, { method: "POST", body: form });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  return body;
}

async function usePhoto(file) {
  stopWebcam();
  showError("");
  lastPhoto = file;
  photo.src = URL.createObjectURL(file);
  photo.classList.remove("hidden");
  try {
    show(await predict(file, file.name || "photo"));
  } catch (e) {
    showError(e.message);
  }
}

// -- webcam: frames go to the API one at a time (the next is sent when the answer arrives) --

async function startWebcam() {
  showError("");
  try {
    webcam = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    showError(`no webcam (${e.message})`);
    return;
  }
  video.srcObject = webcam;
  video.classList.remove("hidden");
  photo.classList.add("hidden");
  $("webcam").textContent = "Stop webcam";
  await video.play();
  sendFrames();
}

function stopWebcam() {
  if (!webcam) return;
  webcam.getTracks().forEach((track) => track.stop());
  webcam = null;
  video.classList.add("hidden");
  photo.classList.remove("hidden");
  $("webcam").textContent = "Start webcam";
}

async function sendFrames() {
  const frame = document.createElement("canvas");
  while (webcam) {
    if (!video.videoWidth) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    frame.width = video.videoWidth;
    frame.height = video.videoHeight;
    frame.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const result = await predict(blob, "frame.jpg");
      if (webcam) show(result);
    } catch (e) {
      showError(e.message);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

// -- wiring --

$("file").addEventListener("change", (event) => {
  if (event.target.files.length) usePhoto(event.target.files[0]);
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) usePhoto(event.dataTransfer.files[0]);
});
$("webcam").addEventListener("click", () => (webcam ? stopWebcam() : startWebcam()));
for (const radio of document.querySelectorAll("input[name=layer]")) {
  radio.addEventListener("change", async () => {
    if (chosenLayer() !== "none" && lastPhoto && !webcam && !(lastResult && lastResult.maps)) {
      try { show(await predict(lastPhoto, lastPhoto.name || "photo")); } catch (e) { showError(e.message); }
    } else {
      showLayer();
    }
  });
}
$("skeletons").addEventListener("change", () => lastResult && draw(lastResult));
$("min-score").addEventListener("change", () => {
  if (lastPhoto && !webcam) usePhoto(lastPhoto);
});

fetch("/models").then((r) => r.json()).then((info) => {
  layouts = info.layouts;
  $("min-score").value = String(info.defaults.min_score);
  const model = $("model");
  model.textContent = `model: ${info.served.model}` +
    (info.served.trained ? "" : " (UNTRAINED: random weights, the poses are meaningless)");
  model.classList.toggle("untrained", !info.served.trained);
  if (lastResult) draw(lastResult);
}).catch((e) => showError(`cannot reach the server (${e.message})`));
