// Xinyong's pages: forms that start jobs, a progress bar fed by server-sent events, cancel.
"use strict";

function formJson(form) {
  const data = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") { data[el.name] = el.checked; continue; }
    if (el.type === "radio") { if (el.checked) data[el.name] = el.value; continue; }
    if (el.type === "number") { if (el.value !== "") data[el.name] = Number(el.value); continue; }
    if (el.value !== "") data[el.name] = el.value;
  }
  return data;
}

function showError(where, text) {
  const p = document.getElementById(where);
  if (!p) return;
  p.textContent = text;
  p.hidden = !text;
}

async function startJob(form, body) {
  showError("form-error", "");
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const res = await fetch(form.dataset.api, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      let detail = data.detail;
      if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      showError("form-error", (data.field ? data.field + ": " : "") + (detail || res.statusText));
      if (button) button.disabled = false;
      return;
    }
    const section = document.getElementById("job");
    section.hidden = false;
    section.dataset.job = data.id;
    section.dataset.kind = data.kind;
    history.replaceState(null, "", `/jobs/${data.id}`);
    follow(section);
  } catch (err) {
    showError("form-error", String(err));
    if (button) button.disabled = false;
  }
}

function resultUrl(job) {
  if (job.kind === "compare") return `/compare/${job.id}`;
  return `/runs/${job.result.run || job.id}`;
}

function render(section, job) {
  const pct = Math.round(100 * job.progress);
  const bar = section.querySelector(".bar");
  section.querySelector("#bar-fill").style.width = pct + "%";
  bar.setAttribute("aria-valuenow", String(pct));
  section.querySelector("#percent").textContent = pct + "%";
  const count = job.total > 1 ? ` (${job.done} of ${job.total})` : "";
  section.querySelector("#phase").textContent = job.state === "running" ? job.phase + count : job.phase;
  const title = section.querySelector("#job-title");
  if (title) title.textContent = `${job.kind === "compare" ? "Comparison" : "Run"} ${job.id}`;
  const cancel = section.querySelector("#cancel");
  const finished = ["done", "failed", "cancelled"].includes(job.state);
  cancel.hidden = finished;
  bar.classList.toggle("done", job.state === "done");
  bar.classList.toggle("failed", job.state === "failed" || job.state === "cancelled");
  if (job.state === "failed" || job.state === "cancelled") showError("job-error", job.message || job.state);
  if (job.state === "done") {
    const link = section.querySelector("#result-link");
    link.href = resultUrl(job);
    link.hidden = false;
    section.dataset.state = "done";
  } else {
    section.dataset.state = job.state;
  }
}

function follow(section) {
  const id = section.dataset.job;
  const cancel = section.querySelector("#cancel");
  cancel.onclick = async () => {
    cancel.disabled = true;
    await fetch(`/api/jobs/${id}/cancel`, {method: "POST"});
  };
  const source = new EventSource(`/api/jobs/${id}/events`);
  source.addEventListener("progress", (ev) => {
    const job = JSON.parse(ev.data);
    render(section, job);
    if (["done", "failed", "cancelled"].includes(job.state)) source.close();
  });
  source.onerror = async () => {
    // The stream ended or broke: read the state once instead.
    source.close();
    const res = await fetch(`/api/jobs/${id}`);
    if (res.ok) {
      const job = await res.json();
      render(section, job);
      if (!["done", "failed", "cancelled"].includes(job.state)) setTimeout(() => follow(section), 1000);
    }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const run = document.getElementById("run-form");
  if (run) {
    run.addEventListener("submit", (ev) => { ev.preventDefault(); startJob(run, formJson(run)); });
  }
  const cmp = document.getElementById("compare-form");
  if (cmp) {
    cmp.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const d = formJson(cmp);
      const body = {a: d.a, replicates: d.replicates};
      if (d.side === "reform") body.reform = d.reform; else body.b = d.b;
      startJob(cmp, body);
    });
  }
  const job = document.getElementById("job");
  if (job && job.dataset.job && !job.hidden) follow(job);
});
