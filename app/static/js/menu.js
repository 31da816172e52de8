// The menu button of narrow screens: shows or hides the sidebar's navigation (a file, not inline: the CSP).
"use strict";
(function () {
  const button = document.querySelector("[data-menu-button]");
  const shell = document.querySelector(".shell");
  if (!button || !shell) return;
  button.addEventListener("click", function () {
    const open = shell.classList.toggle("nav-open");
    button.setAttribute("aria-expanded", open ? "true" : "false");
  });
})();
