// dealerdocs pages work without JavaScript; this file only adds conveniences on top.
//
// Table fields (accessories, insurance): "增加一行" under each table copies the field's
// <template> row with the next row number (name="accessories.3.name", as the server reads
// tables), and "删除此行" in each row takes the row out of the form (the server keeps the rows
// it receives, in order). Without JavaScript the page offers blank rows instead, saving offers
// more, and clearing a row deletes it. On a phone each row is a card (app.css).
"use strict";

document.documentElement.classList.add("js");

function removeButton(row) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "remove-row";
  button.textContent = "删除此行";
  button.setAttribute("aria-label", `删除第 ${row.dataset.row} 行`);
  button.addEventListener("click", () => {
    const next = row.nextElementSibling;
    if (next && next.classList.contains("row-error")) next.remove();
    const table = row.closest("table");
    row.remove();
    const add = table.nextElementSibling;
    if (add && add.classList.contains("add-row")) add.focus();
  });
  const cell = document.createElement("td");
  cell.className = "row-actions";
  cell.appendChild(button);
  row.appendChild(cell);
}

function addRow(table, template) {
  const body = table.tBodies[0];
  const numbers = Array.from(body.querySelectorAll("tr[data-row]"), (tr) => Number(tr.dataset.row));
  const next = String(numbers.length ? Math.max(...numbers) + 1 : 1);
  const row = template.content.firstElementChild.cloneNode(true);
  row.dataset.row = next;
  row.cells[0].textContent = next;
  row.cells[0].dataset.label = `第 ${next} 行`;
  for (const input of row.querySelectorAll("input")) {
    input.name = input.name.replace("__n__", next);
    input.setAttribute("aria-label", input.getAttribute("aria-label").replace("__n__", next));
  }
  removeButton(row);
  body.appendChild(row);
  const first = row.querySelector("input");
  if (first) first.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.grid[data-rows]")) {
    const template = document.getElementById(`${table.id}-row`);
    if (!template) continue;
    const head = document.createElement("th");
    head.className = "row-actions";
    table.tHead.rows[0].appendChild(head);
    for (const row of table.tBodies[0].querySelectorAll("tr[data-row]")) removeButton(row);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add-row";
    button.textContent = "增加一行";
    button.addEventListener("click", () => addRow(table, template));
    table.after(button);
  }
});

// Lookup fields (a quote's 车型 from the 车型库): as the user types, the cases whose name holds
// the words are fetched from /lookup/<workflow> (only those the user may see) into the input's
// <datalist>; picking one puts its model text in the input and fills the form's other fields
// it names (data-fill: field → the case's field) that are empty or still hold what the previous
// pick filled. Without JavaScript the same text typed in full is resolved by the server.
function lookupField(input) {
  const list = document.getElementById(input.getAttribute("list"));
  const note = document.getElementById(input.getAttribute("aria-describedby"));
  const fill = JSON.parse(input.dataset.fill || "{}");
  let found = [];
  let timer = null;
  let asked = "";
  // the picked case's id travels with the form (the server takes it over the text)
  const picked = document.createElement("input");
  picked.type = "hidden";
  picked.name = input.dataset.workflow;
  input.after(picked);

  function shown(value) {
    if (value === true) return "是";
    if (value === false) return "否";
    return value === null || value === undefined ? "" : String(value);
  }

  function pick(item) {
    input.value = shown(item.data[input.dataset.match]);
    picked.value = item.id;
    const filled = [];
    for (const [target, origin] of Object.entries(fill)) {
      const el = input.form && input.form.elements.namedItem(target);
      const value = shown(item.data[origin]);
      if (!el || el.value === undefined || value === "") continue;
      if (el.value === "" || el.value === el.dataset.filled) {
        el.value = value;
        el.dataset.filled = value;
        filled.push(el.labels && el.labels[0] ? el.labels[0].firstChild.textContent.trim() : target);
      }
    }
    if (note) note.textContent = `已选 ${item.id}（${item.summary}）` + (filled.length ? `，带出：${filled.join("、")}` : "");
    offerChoices(item);
  }

  // the fields whose values this pick lists (data-choices-from: a colour among the picked
  // model's colours) get them as their choice list; no pick (a typed model) offers none
  function offerChoices(item) {
    if (!input.form) return;
    for (const el of input.form.querySelectorAll(`[data-choices-from="${input.name}"]`)) {
      const options = document.getElementById(el.getAttribute("list"));
      const values = item ? [...new Set(shown(item.data[el.dataset.choicesField])
        .split(/[、,，;；\/／\n]/).map((v) => v.trim()).filter((v) => v))] : [];
      if (options) options.replaceChildren(...values.map((v) => new Option(v, v)));
      if (values.length && el.value && !values.includes(el.value)) el.value = "";
    }
  }

  async function search(text) {
    asked = text;
    try {
      const answer = await fetch(`${input.dataset.lookup}?q=${encodeURIComponent(text)}`,
                                 {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!answer.ok || asked !== text) return;
      found = await answer.json();
    } catch (err) {
      return;  // offline: the server resolves the text on save
    }
    list.replaceChildren(...found.map((item) => {
      const option = document.createElement("option");
      option.value = item.summary;
      option.label = item.id;
      return option;
    }));
  }

  input.addEventListener("input", () => {
    const text = input.value.trim();
    const chosen = found.find((item) => item.summary === text || item.id === text);
    if (chosen) {
      pick(chosen);
      return;
    }
    picked.value = "";
    if (note) note.textContent = "";
    offerChoices(null);
    clearTimeout(timer);
    if (text) timer = setTimeout(() => search(text), 150);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-lookup][list]")) lookupField(input);
});
