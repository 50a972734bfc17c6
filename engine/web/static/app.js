// dealerdocs pages work without JavaScript; this file only adds conveniences on top.
//
// "增加一行" under each table field: copies the field's <template> row with the next row
// number (name="accessories.3.name", as the server reads tables). Without JavaScript the
// page offers blank rows instead, and saving offers more.
"use strict";

document.documentElement.classList.add("js");

function addRow(table, template) {
  const body = table.tBodies[0];
  const numbers = Array.from(body.querySelectorAll("tr[data-row]"), (tr) => Number(tr.dataset.row));
  const next = String(numbers.length ? Math.max(...numbers) + 1 : 1);
  const row = template.content.firstElementChild.cloneNode(true);
  row.dataset.row = next;
  row.cells[0].textContent = next;
  for (const input of row.querySelectorAll("input")) {
    input.name = input.name.replace("__n__", next);
    input.setAttribute("aria-label", input.getAttribute("aria-label").replace("__n__", next));
  }
  body.appendChild(row);
  const first = row.querySelector("input");
  if (first) first.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.grid[data-rows]")) {
    const template = document.getElementById(`${table.id}-row`);
    if (!template) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "add-row";
    button.textContent = "增加一行";
    button.addEventListener("click", () => addRow(table, template));
    table.after(button);
  }
});
