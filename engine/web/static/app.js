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
