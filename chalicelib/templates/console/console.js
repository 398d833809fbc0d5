// The console works without this script; it adds clipboard copies and "select all".
"use strict";

// The page's words in its language (data-word-* on <body>, from the console's catalog).
function word(name, fallback) {
  return document.body.dataset["word" + name.charAt(0).toUpperCase() + name.slice(1)] || fallback;
}
async function copyText(text) {
  try { await navigator.clipboard.writeText(text); return true; } catch (e) { return false; }
}
document.addEventListener("click", async (event) => {
  const link = event.target.closest("[data-copy-link]");
  if (link) {
    event.preventDefault();
    const out = document.getElementById(link.dataset.output);
    const menu = link.closest("details"); if (menu) menu.open = false;
    const answer = await fetch(link.dataset.copyLink, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!answer.ok) { out.textContent = word("linkFailed", "The link could not be made") + " (" + answer.status + ")."; return; }
    const data = await answer.json();
    const copied = await copyText(data.url);
    out.textContent = "";
    const label = document.createElement("span");
    label.textContent = (copied ? word("copiedTo", "Copied to the clipboard:") : word("copyThis", "Copy this link:")) + " ";
    const code = document.createElement("span");
    code.className = "portal-url"; code.textContent = data.url;
    out.append(label, code);
    return;
  }
  const button = event.target.closest("[data-copy-from]");
  if (button) {
    const field = document.getElementById(button.dataset.copyFrom);
    // A form field (the portal link) or a text block (the API key shown once).
    const copied = await copyText("value" in field ? field.value : field.textContent.trim());
    if (!copied) { if ("select" in field) { field.select(); } else { window.getSelection().selectAllChildren(field); } }
    document.getElementById(button.dataset.output).textContent = copied ? word("copied", "Copied.") : word("pressKeys", "Press Ctrl+C (or Cmd+C) to copy.");
  }
});
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (all) {
    document.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]').forEach((box) => { box.checked = all.checked; });
  }
});
// Settings: the join page header preview follows the brand colour and name as they are typed.
document.addEventListener("input", (event) => {
  const preview = document.querySelector("[data-brand-preview]");
  if (!preview) return;
  if (event.target.id === "branding_colour") preview.style.background = event.target.value;
  if (event.target.id === "branding_display_name") {
    preview.querySelector("[data-preview-name]").textContent = event.target.value || preview.dataset.defaultName || "";
  }
});
