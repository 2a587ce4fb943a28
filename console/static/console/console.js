// Confirmation dialogs: a button names the <dialog> it opens; Escape and "Cancel" close it and
// focus returns to the button (the native <dialog> keeps keyboard focus inside while open).
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-open-dialog]");
  if (opener) {
    const dialog = document.getElementById(opener.dataset.openDialog);
    dialog.returnFocusTo = opener;
    dialog.showModal();
    const first = dialog.querySelector("select, input:not([type=hidden]), button");
    if (first) first.focus();
    return;
  }
  const closer = event.target.closest("[data-close-dialog]");
  if (closer) closer.closest("dialog").close();
});
document.addEventListener("close", (event) => {
  if (event.target.returnFocusTo) event.target.returnFocusTo.focus();
}, true);
