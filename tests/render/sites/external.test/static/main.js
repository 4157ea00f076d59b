window.__BUNDLEKIT__ = { ready: true };
(function () {
  var el = document.createElement("div");
  el.className = "widgetdom-root";
  el.setAttribute("data-widgetdom-" + "version", "3.1");
  el.textContent = "Loaded";
  document.getElementById("root").appendChild(el);
  fetch("https://api.feedapi.test/v1/items").catch(function () {});
})();
